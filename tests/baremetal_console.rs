//! The serial console end to end (SPEC §4): `console/prepare` activates SOL on an `ipmi_sim`
//! BMC and answers a one-time WebSocket URL; bytes round-trip between the socket and the
//! simulator's serial port; `plinth baremetal console` attaches a terminal; release closes
//! the viewer and deactivates SOL.

use plinth_e2e::baremetal::{
    SECRET, Seen, WAIT, add_body, assert_no_secret, call, region, server, settled,
};
use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::tenant;
use plinth_e2e::{Region, wait_for};
use reqwest::Method;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn console_socket(r: &Region, url: &str) -> anyhow::Result<Ws> {
    let mut tls = plinth_common::tls::client_config(&r.ca_pem, None)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(tls));
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(connector)).await?;
    Ok(ws)
}

/// Reads the console until its output holds `want`.
async fn read_until(ws: &mut Ws, want: &str) -> anyhow::Result<String> {
    use futures_util::StreamExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !String::from_utf8_lossy(&seen).contains(want) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| anyhow::anyhow!("no '{want}' in {:?}", String::from_utf8_lossy(&seen)))?;
        match msg {
            Some(Ok(m)) => seen.extend(m.into_data()),
            other => anyhow::bail!("console ended before '{want}': {other:?}"),
        }
    }
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

#[tokio::test]
async fn serial_console_round_trips_over_a_one_time_websocket() -> anyhow::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let r = region().await?;
    let _agent = r.start_agent("127.0.86.1", "az1").await?;
    let a = tenant(&r, "a@example.com").await?;
    let sim = SimBmc::start(SECRET)?;
    let mut seen = Seen::default();
    let body = add_body("con", &sim.ip, SECRET, None);
    let (_, v) = seen.post_as(&r, &a.token, "/v1/baremetal", body).await?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(settled(&r, &id).await?["state"], "running");

    let (status, ticket) = call(
        &r,
        &mut seen,
        Method::POST,
        &format!("/v1/baremetal/{id}/console/prepare"),
        Some(&a.token),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{ticket}");
    let url = ticket["url"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with("wss://"), "{url}");
    assert_eq!(server(&r, &id).await?["console_state"], "active");

    let mut ws = console_socket(&r, &url).await?;
    read_until(&mut ws, "login:").await?;
    ws.send(Message::Binary(b"root\r".to_vec().into())).await?;
    read_until(&mut ws, "[echo:ROOT\r]").await?;
    assert!(
        console_socket(&r, &url).await.is_err(),
        "the URL works once"
    );

    // Release closes the viewer and deactivates SOL.
    let (status, v) = call(
        &r,
        &mut seen,
        Method::POST,
        &format!("/v1/baremetal/{id}/console/release"),
        Some(&a.token),
        None,
    )
    .await?;
    assert_eq!(
        (status, v["console_state"].as_str()),
        (200, Some("inactive")),
        "{v}"
    );
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the viewer was closed");

    // The CLI in a terminal (script(1) gives it one): log in, then Ctrl-] leaves and releases.
    // (The simulator's fake serial line sent its login prompt once; it ticks every second.)
    let cli = cli_console(&r, &id)?;
    cli.expect("tick").await?;
    cli.send(b"root\r")?;
    cli.expect("[echo:ROOT").await?;
    cli.send(&[0x1d])?;
    cli.finished().await?;
    assert_eq!(server(&r, &id).await?["console_state"], "inactive");
    assert_no_secret(&r, &seen, SECRET)
}

/// `plinth baremetal console ID` under script(1), its terminal output collected.
struct CliConsole {
    child: std::sync::Mutex<std::process::Child>,
    stdin: std::sync::Mutex<std::process::ChildStdin>,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

fn cli_console(r: &Region, id: &str) -> anyhow::Result<CliConsole> {
    use std::process::{Command, Stdio};
    let plinth = plinth_e2e::bin("plinth");
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("{} baremetal console {id}", plinth.display()),
            "/dev/null",
        ])
        .env("PLINTH_URL", &r.url)
        .env("PLINTH_TOKEN", &r.admin_token)
        .env("PLINTH_CA", r.data_dir().join("ca.pem"))
        .env("HOME", r.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = output.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().map(|mut o| o.extend_from_slice(&buf[..n])).ok();
        }
    });
    Ok(CliConsole {
        child: std::sync::Mutex::new(child),
        stdin: std::sync::Mutex::new(stdin),
        output,
    })
}

impl CliConsole {
    async fn expect(&self, want: &str) -> anyhow::Result<()> {
        let out = || self.output.lock().map(|o| o.clone()).unwrap_or_default();
        wait_for(&format!("'{want}' on the CLI console"), WAIT, || async {
            Ok(String::from_utf8_lossy(&out()).contains(want).then_some(()))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; it showed {:?}", String::from_utf8_lossy(&out())))
    }

    fn send(&self, bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write;
        let mut stdin = self.stdin.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        stdin.write_all(bytes)?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits for the CLI to exit by itself, successfully.
    async fn finished(&self) -> anyhow::Result<()> {
        let status = wait_for("the CLI console to exit", WAIT, || async {
            let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            Ok(child.try_wait()?)
        })
        .await?;
        anyhow::ensure!(status.success(), "the CLI console exited with {status}");
        Ok(())
    }
}

impl Drop for CliConsole {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
