//! Logs for both daemons: `tracing` to stderr (journald picks it up), filtered by `PLINTH_LOG`
//! (`info` by default; e.g. `PLINTH_LOG=debug,sqlx=warn`).

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
