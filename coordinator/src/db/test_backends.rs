//! The store's tests run on both backends: `store_test!` expands a test once on a SQLite file
//! and once on a fresh database of a PostgreSQL server this test process starts (one per
//! process, on 127.0.0.140; stopped by pid when the process exits, and by the kernel should
//! it die).

use super::{Database, Dialect, Store};
use crate::dev::postgres::TempPostgres;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

static SERVER: OnceLock<Mutex<Option<TempPostgres>>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

extern "C" fn stop_server() {
    if let Some(server) = SERVER.get() {
        let mut server = server.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut server) = server.take() {
            server.stop();
        }
    }
}

/// The URL of a new, empty database on the process's server (started on first use).
pub(crate) async fn fresh_database() -> String {
    let server = SERVER.get_or_init(|| {
        let server = TempPostgres::start("127.0.0.140".parse().expect("an address"))
            .expect("starting PostgreSQL for the store's tests");
        // SAFETY: registers a plain function to run at exit; it only signals and waits on
        // the server's pid.
        #[allow(unsafe_code)]
        unsafe {
            libc::atexit(stop_server)
        };
        Mutex::new(Some(server))
    });
    let name = format!("t{}", DATABASES.fetch_add(1, Ordering::Relaxed));
    let url = {
        let server = server.lock().unwrap_or_else(|p| p.into_inner());
        let server = server.as_ref().expect("the server runs until exit");
        (server.url(&name), server.url("postgres"))
    };
    crate::dev::postgres::create_database(&url.1, &name)
        .await
        .expect("creating a test database");
    url.0
}

/// A new, empty store on `dialect`'s backend, and a temporary directory (the SQLite file's,
/// or an empty one for tests that keep files beside the store).
pub(crate) async fn test_store_on(dialect: Dialect) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = match dialect {
        Dialect::Sqlite => Database::Sqlite(dir.path().join("test.db")),
        Dialect::Postgres => Database::Postgres(fresh_database().await),
    };
    let store = Store::connect(&database, &crate::jobs::Jobs::new())
        .await
        .expect("open store");
    (store, dir)
}

/// `store_test! { async fn name(store, dir) -> Ret { ... } }`: the test `name::sqlite` and
/// `name::postgres`, each with `store` a new store on that backend and `dir` a temp dir.
macro_rules! store_test {
    ($(#[$meta:meta])* async fn $name:ident($store:ident, $dir:ident) $(-> $ret:ty)? $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[tokio::test]
            async fn sqlite() $(-> $ret)? {
                #[allow(unused_variables)]
                let ($store, $dir) =
                    $crate::db::test_backends::test_store_on($crate::db::Dialect::Sqlite).await;
                $body
            }

            $(#[$meta])*
            #[tokio::test]
            async fn postgres() $(-> $ret)? {
                #[allow(unused_variables)]
                let ($store, $dir) =
                    $crate::db::test_backends::test_store_on($crate::db::Dialect::Postgres).await;
                $body
            }
        }
    };
}
pub(crate) use store_test;
