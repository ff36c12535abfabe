//! `callbackd prompts`: list the replaceable prompts, or synthesize the default set.
//!
//! Generation is the documented, repeatable step behind the shipped `sounds/` directory.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::prompts;

#[derive(Debug, Args)]
pub struct PromptsArgs {
    #[command(subcommand)]
    pub action: PromptsAction,
}

#[derive(Debug, Subcommand)]
pub enum PromptsAction {
    /// Print every prompt file name a deployment can replace, with its English text.
    List,
    /// Synthesize the default prompts with espeak-ng and sox (Debian packages of those names).
    Generate {
        /// Sounds directory to write `<lang>/callbackd/*.wav` under.
        #[arg(long, default_value = "sounds")]
        out: PathBuf,
        /// Languages to generate (all shipped ones by default).
        #[arg(long = "lang", value_delimiter = ',')]
        languages: Vec<String>,
    },
}

pub fn run(args: PromptsArgs) -> anyhow::Result<()> {
    match args.action {
        PromptsAction::List => {
            for (name, text) in prompts::catalogue() {
                println!("{name}.wav\t{text}");
            }
        }
        PromptsAction::Generate { out, languages } => {
            let languages = if languages.is_empty() {
                prompts::LANGUAGES.iter().map(|l| l.to_string()).collect()
            } else {
                languages
            };
            let written = prompts::generate(&out, &languages)
                .with_context(|| format!("generating prompts under {}", out.display()))?;
            println!(
                "wrote {} prompt files for {} under {}",
                written.len(),
                languages.join(", "),
                out.display()
            );
        }
    }
    Ok(())
}
