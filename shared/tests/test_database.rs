//! The throwaway PostgreSQL database each test gets.

use adjoin_shared::testing::TestDatabase;
use sqlx::{Connection, Executor, PgConnection, Row};

#[tokio::test]
async fn each_test_gets_a_fresh_database_that_is_dropped_afterwards() {
    let first = TestDatabase::create().await;
    let second = TestDatabase::create().await;
    assert_ne!(first.name(), second.name());

    let mut connection = PgConnection::connect(first.url()).await.unwrap();
    connection
        .execute("CREATE TABLE probe (id int primary key)")
        .await
        .unwrap();
    connection
        .execute("INSERT INTO probe VALUES (1), (2)")
        .await
        .unwrap();
    let count: i64 = sqlx::query("SELECT count(*) FROM probe")
        .fetch_one(&mut connection)
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
    let mut other = PgConnection::connect(second.url()).await.unwrap();
    let tables: i64 = sqlx::query("SELECT count(*) FROM pg_tables WHERE tablename = 'probe'")
        .fetch_one(&mut other)
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "databases are independent");
    connection.close().await.unwrap();
    other.close().await.unwrap();

    let name = first.name().to_owned();
    drop(first);
    let mut admin = PgConnection::connect(second.url()).await.unwrap();
    let remaining: i64 = sqlx::query("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(remaining, 0, "dropped with its value");
}
