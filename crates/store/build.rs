//! Rebuilds the crate when a migration is added: `embed_migrations!` reads
//! the files, but cargo does not watch a new directory on its own.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
