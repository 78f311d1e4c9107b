// refinery embeds the migration files that exist at build time; a file added later must
// trigger a rebuild too.
fn main() {
    println!("cargo:rerun-if-changed=../migrations/postgres");
    println!("cargo:rerun-if-changed=../migrations/sqlite");
}
