//! The `wxlogin` command: `serve`, `emulator`, `demo`, `migrate`, `openapi`, `keys`, each
//! subcommand in its own file. `main.rs` only calls `run`.

mod demo;
mod emulator;
mod keys;
mod serve;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{FileSettings, ServeArgs};

/// Errors of a subcommand, printed by `main`.
pub type Failure = Box<dyn std::error::Error>;

#[derive(Parser)]
#[command(
    name = "wxlogin",
    version,
    about = "Sign people in with WeChat: mini program, website and Official Account login"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the WeChat emulator (WeChat's server APIs, for tests and demos).
    Emulator(emulator::EmulatorArgs),
    /// Run server and emulator in one process on embedded defaults, with a demo mini program.
    Demo(demo::DemoArgs),
    /// Apply the database migrations and exit.
    Migrate(ServeArgs),
    /// Print the OpenAPI document the server serves.
    Openapi,
    /// The keys that sign access tokens: `rotate [--now]`, `list`.
    Keys(keys::KeysArgs),
}

/// Parses `argv` (clap exits on `--help` or a malformed flag), reading the settings file of
/// `serve` and `migrate` where one is named: its keys are the flags' defaults, so `argv` is
/// parsed a second time with them.
fn parse(argv: &[OsString]) -> Result<(Command, FileSettings), Failure> {
    let first = Cli::from_arg_matches(&Cli::command().get_matches_from(argv))?;
    let path = match &first.command {
        Command::Serve(args) | Command::Migrate(args) => args.config.clone(),
        Command::Keys(keys) => keys.action.settings().config.clone(),
        _ => None,
    };
    let Some(path) = path else {
        return Ok((first.command, FileSettings::default()));
    };
    let file = FileSettings::read(&path)?;
    let command = ["serve", "migrate"]
        .into_iter()
        .fold(Cli::command(), |cmd, name| {
            cmd.mut_subcommand(name, |sub| file.apply(sub))
        })
        .mut_subcommand("keys", |keys| {
            ["rotate", "list"].into_iter().fold(keys, |cmd, name| {
                cmd.mut_subcommand(name, |sub| file.apply(sub))
            })
        });
    let cli = Cli::from_arg_matches(&command.get_matches_from(argv))?;
    Ok((cli.command, file))
}

/// Runs the subcommand `argv` names.
pub async fn run(argv: Vec<OsString>) -> Result<(), Failure> {
    let (command, file) = parse(&argv)?;
    match command {
        Command::Openapi => {
            println!("{}", crate::api::openapi_json());
            Ok(())
        }
        Command::Serve(args) => serve::serve(args.resolve(&file)?).await,
        Command::Migrate(args) => serve::migrate(args.resolve(&file)?).await,
        Command::Emulator(args) => emulator::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Keys(keys) => match keys.action {
            keys::KeysAction::Rotate { now, settings } => {
                keys::rotate(settings.resolve(&file)?, now).await
            }
            keys::KeysAction::List { settings } => keys::list(settings.resolve(&file)?).await,
        },
    }
}
