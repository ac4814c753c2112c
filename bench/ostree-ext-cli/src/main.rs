//! `ostree-ext-cli`: ostree-ext's own command line (`container encapsulate`,
//! `container unencapsulate`, `container image pull`, ...), as the library ships it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ostree_ext::cli::run_from_iter(std::env::args_os()).await
}
