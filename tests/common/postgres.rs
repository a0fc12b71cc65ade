//! A fresh database for one test on the PostgreSQL server `VGGSERVE_TEST_POSTGRES_URL`
//! names (a superuser URL; `make test` starts a throwaway server with
//! tests/services/with_postgres.sh). Shared by the store's unit tests and the API tests.

/// The new database's URL; `None` (the caller skips, with a note) when no server is given
/// and `VGGSERVE_REQUIRE_POSTGRES` is unset.
pub async fn fresh_database(prefix: &str) -> Option<String> {
    let Ok(admin) = std::env::var("VGGSERVE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("VGGSERVE_REQUIRE_POSTGRES").is_none(),
            "VGGSERVE_REQUIRE_POSTGRES is set but VGGSERVE_TEST_POSTGRES_URL is not"
        );
        eprintln!("no VGGSERVE_TEST_POSTGRES_URL: skipping what needs PostgreSQL");
        return None;
    };
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
}
