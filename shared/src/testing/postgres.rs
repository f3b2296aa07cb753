use sqlx::{Connection, Executor, PgConnection};

/// The server tests use when `DATABASE_URL` is unset: the local cluster with trust
/// auth, as `scripts/test-stack.sh` sets it up.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Terminates every other connection to `database` (`pg_terminate_backend`), as
/// an administrator or a failover would; returns how many there were.
pub async fn terminate_connections(url: &str, database: &str) -> i64 {
    let mut admin = PgConnection::connect(url).await.unwrap();
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let _ = admin.close().await;
    terminated
}

/// A PostgreSQL database created for one test and dropped when the value is.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database on the server named by `DATABASE_URL` (any
    /// database on it) or on the local default server.
    pub async fn create() -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned());
        let name = super::unique_name("adjoin_test");
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                "cannot connect to PostgreSQL at {} ({error}); start it with scripts/test-stack.sh \
                 or point DATABASE_URL at a server",
                crate::config::redact_url(&admin_url)
            )
            });
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
        let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            name,
            url: url.to_string(),
            admin_url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, where blocking on it would deadlock;
        // a thread with its own runtime can wait for the server.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|error| error.to_string())?;
                admin
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .map_err(|error| error.to_string())?;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!(
                "warning: could not drop test database {}: {error}",
                self.name
            );
        }
    }
}
