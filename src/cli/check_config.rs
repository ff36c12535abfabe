//! `callbackd check-config FILE`: validate a configuration without connecting to anything.
//! Operators run it before a restart, so a typo is caught at their desk and not at 3 a.m.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::{Config, ExitAction, LineConfig, NoAgentPolicy};
use crate::prompts::{PromptSet, FALLBACK_LANGUAGE};
use crate::switch::{MediaDir, MediaSource, PhoneNumber};
use anyhow::Context;

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML file to check.
    pub file: PathBuf,
    /// FreeSWITCH's sounds directory (as `run --sounds`): warn about prompt files missing
    /// there, for each line's language or under the line's own `sounds`.
    #[arg(long)]
    pub sounds: Option<PathBuf>,
    /// Where FreeSWITCH looks up relative playback paths, its `sound_prefix` [default:
    /// <sounds>/en/us/callie, vanilla's]: relative greetings are checked there.
    #[arg(long, requires = "sounds")]
    pub sound_prefix: Option<PathBuf>,
    /// Fail (exit status 1) when a prompt file is missing. The toll-free caller ID warning
    /// never fails the check: many carriers allow it.
    #[arg(long)]
    pub strict: bool,
}

/// Something the config allows that may still not work on the switch.
#[derive(Debug)]
enum Warning {
    /// A file callers would hear is not there: fatal with `--strict`.
    MissingPrompt(String),
    /// Worth checking with the carrier; never fatal, since the reference says toll-free
    /// numbers are supported and only some carriers refuse to call from them.
    TollFreeCallerId(String),
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    // The error already names the file, line and key; context would only repeat it.
    let config = Config::load(&args.file)?;
    print!("{}", summary(&config));
    let mut warnings = toll_free_caller_ids(&config);
    if let Some(path) = &args.sounds {
        // The daemon refuses such a directory (`run --sounds`): so does the check.
        let sounds = &MediaDir::new(path).context("--sounds")?;
        // Vanilla's vars.xml sets sound_prefix=$${sounds_dir}/en/us/callie as a global
        // variable, which every channel reads when a path is relative.
        let prefix = args
            .sound_prefix
            .clone()
            .unwrap_or_else(|| path.join("en/us/callie"));
        warnings.extend(missing_prompts(&config, sounds, &prefix));
    }
    let mut missing = 0;
    for w in &warnings {
        match w {
            Warning::MissingPrompt(text) => {
                missing += 1;
                eprintln!("warning: {text}");
            }
            Warning::TollFreeCallerId(text) => eprintln!("warning: {text}"),
        }
    }
    if args.strict && missing > 0 {
        anyhow::bail!("{missing} prompt warning(s), and --strict makes them errors");
    }
    Ok(())
}

/// Lines whose outbound caller ID is toll-free, which some carriers refuse to call from.
fn toll_free_caller_ids(c: &Config) -> Vec<Warning> {
    c.lines
        .iter()
        .filter_map(|l| {
            let id = l.outbound_caller_id.as_ref()?;
            is_toll_free(id).then(|| {
                Warning::TollFreeCallerId(format!(
                    "line {}: outbound_caller_id {} is a toll-free number; some carriers refuse \
                     outbound calls from toll-free numbers, so ask yours before relying on callbacks",
                    l.name,
                    id.as_str()
                ))
            })
        })
        .collect()
}

fn is_toll_free(number: &PhoneNumber) -> bool {
    phonenumber::parse(None, number.as_str()).is_ok_and(|n| {
        n.number_type(&phonenumber::metadata::DATABASE) == phonenumber::Type::TollFree
    })
}

/// Prompt files callers would hear that are not under `sounds`, where the daemon's prompts
/// are, or `prefix`, where FreeSWITCH resolves a relative playback path.
fn missing_prompts(c: &Config, sounds: &MediaDir, prefix: &Path) -> Vec<Warning> {
    let installed = PromptSet::installed(sounds.as_path());
    let mut out = Vec::new();
    for q in &c.queues {
        for g in &q.greetings {
            if let Some(text) = missing_relative(g, prefix) {
                out.push(format!("queue {}: greeting {text}", q.name));
            }
        }
    }
    for l in &c.lines {
        out.extend(missing_line_prompts(l, sounds, &installed));
        let greetings = [
            ("offer_greeting", &l.callback.offer_greeting),
            ("confirmation_greeting", &l.callback.confirmation_greeting),
        ];
        for (key, media) in greetings {
            if let Some(text) = media.as_ref().and_then(|m| missing_relative(m, prefix)) {
                out.push(format!("line {}: {key} {text}", l.name));
            }
        }
    }
    out.into_iter().map(Warning::MissingPrompt).collect()
}

/// The line's own prompt files, chosen as the daemon chooses them (the line's language if
/// installed, else English), less those its greetings replace.
fn missing_line_prompts(l: &LineConfig, sounds: &MediaDir, installed: &[String]) -> Vec<String> {
    let root = l.sounds.as_ref().unwrap_or(sounds);
    let set = PromptSet::choose(root, &[l.language.as_str(), FALLBACK_LANGUAGE], installed);
    let mut out = Vec::new();
    if set.language() != l.language.as_str() {
        out.push(format!(
            "line {}: no {} prompts under {} (callers hear {})",
            l.name,
            l.language,
            root.as_path().display(),
            set.language()
        ));
    }
    let replaced = |name: &str| match name {
        "callback-offer" => l.callback.offer_greeting.is_some(),
        "confirmation" => l.callback.confirmation_greeting.is_some(),
        _ => false,
    };
    let wanted: Vec<MediaSource> = crate::prompts::catalogue()
        .map(|(name, _)| name)
        .filter(|name| !replaced(name))
        .map(|name| set.file(name))
        .collect();
    let missing: Vec<&Path> = wanted
        .iter()
        .map(|file| Path::new(file.as_str()))
        .filter(|file| !file.is_file())
        .collect();
    // All of one set live in one folder: name it once, then the files.
    if let Some(dir) = missing.first().and_then(|f| f.parent()) {
        let names: Vec<String> = missing
            .iter()
            .filter_map(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        out.push(if missing.len() == wanted.len() {
            format!(
                "line {}: none of the {} prompt files is in {}",
                l.name,
                wanted.len(),
                dir.display()
            )
        } else {
            format!(
                "line {}: {} prompt file(s) missing in {}: {}",
                l.name,
                missing.len(),
                dir.display(),
                names.join(", ")
            )
        });
    }
    out
}

/// `media` when it is a relative file path that FreeSWITCH would not find under `prefix`.
/// Sources (`local_stream://`, `say:`, `${var}`) and absolute paths are left alone: they
/// are not looked up in the sounds directory.
fn missing_relative(media: &MediaSource, prefix: &Path) -> Option<String> {
    let path = media.as_str();
    if path.contains(':') || path.starts_with(['/', '$', '{']) {
        return None;
    }
    let full = prefix.join(path);
    // mod_sndfile also tries a folder named after the channel's rate next to the file
    // (ivr/8000/ivr-welcome.wav), which is how FreeSWITCH's own sound packages are laid out.
    let in_rate_folder = || {
        let (Some(dir), Some(name)) = (full.parent(), full.file_name()) else {
            return false;
        };
        [8000, 16000, 32000, 48000]
            .iter()
            .any(|rate| dir.join(rate.to_string()).join(name).is_file())
    };
    (!full.is_file() && !in_rate_folder()).then(|| format!("{path} is not in {}", prefix.display()))
}

fn summary(c: &Config) -> String {
    let mut out = format!(
        "ok: {} queue(s), {} line(s), {} agent(s)\nesl: {}\nredis: {} (prefix {:?})\n",
        c.queues.len(),
        c.lines.len(),
        c.agents.len(),
        c.esl.address,
        c.redis.redacted_url(),
        c.redis.key_prefix
    );
    for q in &c.queues {
        let max_wait = match &q.max_wait {
            None => "none".to_owned(),
            Some(m) => match &m.exit {
                ExitAction::Hangup => format!("{} s then hang up", m.after.as_secs()),
                ExitAction::Transfer { extension, context } => {
                    format!("{} s then {extension}@{context}", m.after.as_secs())
                }
            },
        };
        let no_agent = match &q.no_agent {
            NoAgentPolicy::Wait => "wait".to_owned(),
            NoAgentPolicy::Transfer { extension, context } => format!("{extension}@{context}"),
        };
        let agents = c
            .agents
            .iter()
            .filter(|a| a.queues.iter().any(|s| s.queue == q.name))
            .count();
        out.push_str(&format!(
            "queue {}: {}, ring {} s, wrap-up {} s, max wait {max_wait}, no agent: {no_agent}, {agents} agent(s)\n",
            q.name,
            q.strategy.as_str(),
            q.ring_time.as_secs(),
            q.wrap_up.as_secs(),
        ));
    }
    for l in &c.lines {
        let callback = match (l.callback.enabled, &l.outbound_caller_id) {
            (false, _) => "off".to_owned(),
            (true, None) => "enabled but never offered: no outbound_caller_id".to_owned(),
            (true, Some(_)) => format!("on, expiry {} min", l.callback.expiry.as_secs() / 60),
        };
        out.push_str(&format!(
            "line {} ({}) -> queue {}, language {}, callback {callback}\n",
            l.name, l.did, l.queue, l.language
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_the_example_names_every_queue_and_line() {
        let text = include_str!("../../callbackd.example.toml");
        let config = Config::parse(std::path::Path::new("example.toml"), text).unwrap();
        let s = summary(&config);
        assert!(
            s.starts_with("ok: 2 queue(s), 1 line(s), 2 agent(s)"),
            "{s}"
        );
        assert!(s.contains("queue support: longest-idle, ring 20 s"), "{s}");
        assert!(
            s.contains("line main (+4930123456) -> queue support"),
            "{s}"
        );
    }

    #[test]
    fn toll_free_is_told_by_libphonenumber() {
        for (number, toll_free) in [
            ("+18005550100", true),
            ("+498001234567", true),
            ("+4930123456", false),
            ("+14155550123", false),
        ] {
            let n = PhoneNumber::new(number).unwrap();
            assert_eq!(is_toll_free(&n), toll_free, "{number}");
        }
    }

    #[test]
    fn relative_files_are_found_as_freeswitch_finds_them() {
        let prefix = std::env::temp_dir().join(format!("callbackd-prefix-{}", std::process::id()));
        std::fs::create_dir_all(prefix.join("ivr/8000")).unwrap();
        std::fs::create_dir_all(prefix.join("acme")).unwrap();
        std::fs::write(prefix.join("ivr/8000/ivr-welcome.wav"), b"").unwrap();
        std::fs::write(prefix.join("acme/offer.wav"), b"").unwrap();
        let media = |s: &str| MediaSource::new(s).unwrap();
        for found in [
            "ivr/ivr-welcome.wav",
            "acme/offer.wav",
            "local_stream://moh",
            "/elsewhere/offer.wav",
        ] {
            assert_eq!(missing_relative(&media(found), &prefix), None, "{found}");
        }
        let missing = missing_relative(&media("ivr/ivr-please_hold.wav"), &prefix).unwrap();
        assert!(
            missing.starts_with("ivr/ivr-please_hold.wav is not in"),
            "{missing}"
        );
        std::fs::remove_dir_all(&prefix).unwrap();
    }
}
