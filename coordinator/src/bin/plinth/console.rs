//! `plinth baremetal console ID`: prepares the server's serial console, attaches this
//! terminal to its WebSocket (raw mode, keys go straight to the serial port), and releases the
//! console when the user leaves with Ctrl-].

use crate::client::Client;
use crate::terminal::TerminalMode;
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use plinth_common::api::ConsoleTicket;
use std::io::Write;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

/// Ctrl-]: ends the session, as telnet's escape does.
const ESCAPE: u8 = 0x1d;

pub async fn attach(client: &Client, id: &str) -> anyhow::Result<()> {
    let ticket: ConsoleTicket = serde_json::from_value(
        client
            .post_empty(&["v1", "baremetal", id, "console", "prepare"])
            .await?,
    )
    .context("the coordinator's console answer has an unexpected shape")?;
    let connector = tokio_tungstenite::Connector::Rustls(client.websocket_tls());
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(&ticket.url, None, false, Some(connector))
            .await
            .context("connecting to the console")?;
    eprintln!("[console of {id}: Ctrl-] leaves and releases it]\r");
    let outcome = {
        let _raw = TerminalMode::raw();
        pump(ws).await
    };
    let released = client
        .post_empty(&["v1", "baremetal", id, "console", "release"])
        .await;
    outcome?;
    released.map(drop)
}

async fn pump(
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> anyhow::Result<()> {
    let (mut sink, mut stream) = ws.split();
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            n = stdin.read(&mut buf) => {
                let n = n.context("reading the terminal")?;
                if n == 0 {
                    return Ok(());
                }
                let keys = &buf[..n];
                let (keys, leave) = match keys.iter().position(|b| *b == ESCAPE) {
                    Some(at) => (&keys[..at], true),
                    None => (keys, false),
                };
                if !keys.is_empty() {
                    sink.send(Message::Binary(keys.to_vec().into())).await?;
                }
                if leave {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ok(());
                }
            }
            msg = stream.next() => {
                let bytes = match msg {
                    None | Some(Ok(Message::Close(_))) => return Ok(()),
                    Some(Err(e)) => bail!("the console connection failed: {e}"),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(_)) => continue,
                };
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)?;
                out.flush()?;
            }
        }
    }
}
