//! Command-line definition (clap derive) and dispatch. Each subcommand turns its arguments
//! into library calls and prints the result.

/// `println!` that returns a write error (a closed pipe: `ocitree inspect x | head`) from the
/// calling function instead of panicking; `main` turns a broken pipe into a clean exit.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod browse;
mod encapsulate;
mod export;
mod file_tree;
mod import;
mod manage;
mod progress;
mod registry;
mod serve;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Import OCI container images into OSTree repositories as deduplicated commits.
///
/// Every layer is stored as its own commit (shared by all images that use it) and every image
/// as one merged commit, applied with OCI whiteout semantics.
#[derive(Debug, Parser)]
#[command(
    name = "ocitree",
    version,
    about,
    long_about,
    after_long_help = "Environment, for registry requests:\n\n\
        HTTPS_PROXY, HTTP_PROXY: the proxy of https:// and http:// requests (lower case too; \
        socks5:// works). Loopback addresses are never proxied.\n\n\
        NO_PROXY: what is not proxied: *, addresses, CIDR blocks, domain names (with their \
        subdomains; .name: subdomains only), each with an optional :PORT. Each hop of a \
        redirect (a blob sent to a storage host) is routed on its own.\n\n\
        REGISTRY_AUTH_FILE, CONTAINERS_REGISTRIES_CONF, OCITREE_CERTS_D: see --authfile, \
        --registries-conf, --cert-dir of import."
)]
pub struct Cli {
    /// Path of the OSTree repository (default ~/.local/share/ocitree/repo). `init` and `import` create it (bare-user by default) when it does not exist yet; the other commands need it to exist.
    #[arg(long, global = true, env = "OCITREE_REPO", value_name = "PATH")]
    pub repo: Option<PathBuf>,

    /// Largest manifest, index, config or index.json read, in bytes (they are held in memory).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = ocitree::spec::METADATA_LIMIT)]
    pub max_metadata_size: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(manage::InitArgs),
    Import(Box<import::ImportArgs>),
    Check(import::CheckArgs),
    Export(export::ExportArgs),
    Encapsulate(Box<encapsulate::EncapsulateArgs>),
    Images(manage::ImagesArgs),
    Inspect(manage::InspectArgs),
    Checkout(browse::CheckoutArgs),
    Ls(browse::LsArgs),
    Cat(browse::CatArgs),
    Rm(manage::RmArgs),
    Prune(manage::PruneArgs),
    Sign(serve::SignCommitArgs),
    Summary(serve::SummaryArgs),
    Delta(serve::DeltaArgs),
    #[command(hide = true)]
    GenerateMan(manage::GenerateManArgs),
}

impl Cli {
    /// The repository path. A path given (`--repo`, `OCITREE_REPO`) is taken as it is: a
    /// repository is created there only if its parent exists. The default path's parents are
    /// created for the commands that create the repository.
    fn repo_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.repo {
            return Ok(p.clone());
        }
        let path = ocitree::repo::default_path();
        let creates = matches!(
            self.command,
            Command::Init(_) | Command::Import(_) | Command::Check(_)
        );
        if let (true, Some(parent)) = (creates, path.parent()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        Ok(path)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let repo = cli.repo_path()?;
    ocitree::spec::set_metadata_limit(cli.max_metadata_size);
    match cli.command {
        Command::Init(a) => manage::init(&repo, a),
        Command::Import(a) => import::run(&repo, *a),
        Command::Check(a) => import::check(&repo, a),
        Command::Export(a) => export::run(&repo, a),
        Command::Encapsulate(a) => encapsulate::run(&repo, *a),
        Command::Images(a) => manage::images(&repo, a),
        Command::Inspect(a) => manage::inspect(&repo, a),
        Command::Checkout(a) => browse::checkout(&repo, a),
        Command::Ls(a) => browse::ls(&repo, a),
        Command::Cat(a) => browse::cat(&repo, a),
        Command::Rm(a) => manage::rm(&repo, a),
        Command::Prune(a) => manage::prune(&repo, a),
        Command::Sign(a) => serve::sign_commit(&repo, a),
        Command::Summary(a) => serve::summary(&repo, a),
        Command::Delta(a) => serve::delta(&repo, a),
        Command::GenerateMan(a) => manage::generate_man(a),
    }
}
