//! What callbackd says, per language: the sound files behind each prompt, with fallback to
//! English, and the repeatable step that synthesizes the default set with espeak-ng.
//!
//! Files follow FreeSWITCH's layout (`<sounds>/<lang>/callbackd/<name>.wav`), so an operator
//! replaces any prompt by dropping a recording with the same name in its place.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::callback::Prompt;
use crate::switch::{InvalidInput, MediaDir, MediaSource};

/// Languages the default set ships in: those of the reference documents.
pub const LANGUAGES: &[&str] = &["en", "es", "fr", "de", "ja"];

/// The language used when a line's language has no prompts.
pub const FALLBACK_LANGUAGE: &str = "en";

/// One prompt file and its text in each shipped language (`en es fr de ja`). Japanese is
/// written in kana because espeak-ng reads kana but not kanji.
struct PromptText {
    name: &'static str,
    texts: [&'static str; 5],
}

macro_rules! prompt {
    ($name:literal, $en:literal, $es:literal, $fr:literal, $de:literal, $ja:literal) => {
        PromptText {
            name: $name,
            texts: [$en, $es, $fr, $de, $ja],
        }
    };
}

const TEXTS: &[PromptText] = &[
    prompt!("queue-welcome",
        "Thank you for calling. All our agents are busy. Please hold, your call will be answered in turn.",
        "Gracias por su llamada. Todos nuestros agentes están ocupados. Por favor, espere; su llamada será atendida por orden de llegada.",
        "Merci de votre appel. Tous nos conseillers sont occupés. Veuillez patienter, votre appel sera traité dans l'ordre d'arrivée.",
        "Vielen Dank für Ihren Anruf. Alle Mitarbeiter sind im Gespräch. Bitte warten Sie, Ihr Anruf wird der Reihe nach angenommen.",
        "おでんわ ありがとう ございます。 ただいま たんとうしゃが すべて つうわちゅうです。 じゅんばんに おつなぎ しますので、 そのまま おまち ください。"),
    prompt!("position-is",
        "Your position in the queue is",
        "Su posición en la cola es",
        "Votre position dans la file d'attente est",
        "Ihre Position in der Warteschlange ist",
        "あなたの じゅんばんは"),
    prompt!("wait-minutes",
        "Your estimated waiting time in minutes is",
        "Su tiempo de espera estimado en minutos es",
        "Votre temps d'attente estimé en minutes est de",
        "Ihre voraussichtliche Wartezeit in Minuten beträgt",
        "およその おまちじかんは なんぷんか というと"),
    prompt!("callback-offer",
        "If you prefer to be called back, press 2. You will keep your place in the queue.",
        "Si prefiere que le devolvamos la llamada, pulse 2. Mantendrá su lugar en la cola.",
        "Si vous préférez être rappelé, appuyez sur 2. Vous garderez votre place dans la file d'attente.",
        "Wenn Sie zurückgerufen werden möchten, drücken Sie die 2. Sie behalten Ihren Platz in der Warteschlange.",
        "おりかえしの おでんわを ごきぼうの ばあいは、 にを おして ください。 じゅんばんは そのまま です。"),
    prompt!("menu-own-number",
        "To be called back on the number you are calling from, press 1.",
        "Para que le llamemos al número desde el que llama, pulse 1.",
        "Pour être rappelé au numéro depuis lequel vous appelez, appuyez sur 1.",
        "Um unter der Nummer zurückgerufen zu werden, von der Sie anrufen, drücken Sie die 1.",
        "いま おかけの ばんごうに おりかえす ばあいは、 いちを おして ください。"),
    prompt!("menu-other-number",
        "To be called back on another number, press 2.",
        "Para que le llamemos a otro número, pulse 2.",
        "Pour être rappelé à un autre numéro, appuyez sur 2.",
        "Um unter einer anderen Nummer zurückgerufen zu werden, drücken Sie die 2.",
        "べつの ばんごうに おりかえす ばあいは、 にを おして ください。"),
    prompt!("menu-back",
        "To return to the queue, press 3.",
        "Para volver a la cola, pulse 3.",
        "Pour revenir dans la file d'attente, appuyez sur 3.",
        "Um in die Warteschlange zurückzukehren, drücken Sie die 3.",
        "まちじょうたいに もどる ばあいは、 さんを おして ください。"),
    prompt!("invalid-choice",
        "That is not a valid choice.",
        "Esa opción no es válida.",
        "Ce choix n'est pas valide.",
        "Diese Auswahl ist ungültig.",
        "その せんたくは むこうです。"),
    // One file serves every line, so it names only the forms every line accepts; lines with
    // a `country` also take national numbers (an operator may record that in its place).
    prompt!("enter-number",
        "Please enter the number to call, starting with zero zero or star and the country code, then press the hash key.",
        "Introduzca el número al que llamar, empezando por cero cero o asterisco y el prefijo del país, y pulse la tecla almohadilla.",
        "Veuillez saisir le numéro à rappeler, en commençant par zéro zéro ou étoile et l'indicatif du pays, puis appuyez sur la touche dièse.",
        "Bitte geben Sie die Rückrufnummer ein, beginnend mit null null oder Stern und der Landesvorwahl, und drücken Sie dann die Rautetaste.",
        "おりかえしの ばんごうを、 ぜろ ぜろ または こめじるし と くにばんごうから にゅうりょくし、 さいごに シャープを おして ください。"),
    prompt!("invalid-number",
        "That number is not valid.",
        "Ese número no es válido.",
        "Ce numéro n'est pas valide.",
        "Diese Nummer ist ungültig.",
        "その ばんごうは むこうです。"),
    prompt!("callback-to",
        "We will call you back on",
        "Le llamaremos al número",
        "Nous vous rappellerons au numéro",
        "Wir rufen Sie zurück unter der Nummer",
        "おりかえしの ばんごうは"),
    prompt!("confirm-options",
        "To confirm, press 1. To enter it again, press 2.",
        "Para confirmar, pulse 1. Para introducirlo de nuevo, pulse 2.",
        "Pour confirmer, appuyez sur 1. Pour le saisir à nouveau, appuyez sur 2.",
        "Zum Bestätigen drücken Sie die 1. Um die Nummer neu einzugeben, drücken Sie die 2.",
        "よろしければ いちを、 にゅうりょくし なおす ばあいは にを おして ください。"),
    prompt!("record-name",
        "After the tone, please say your name.",
        "Después del tono, diga su nombre.",
        "Après le bip, veuillez dire votre nom.",
        "Bitte nennen Sie nach dem Ton Ihren Namen.",
        "はっしんおんの あとに、 おなまえを おっしゃって ください。"),
    prompt!("confirmation",
        "Thank you. We will call you back when it is your turn. You can hang up now.",
        "Gracias. Le llamaremos cuando sea su turno. Ya puede colgar.",
        "Merci. Nous vous rappellerons lorsque ce sera votre tour. Vous pouvez raccrocher.",
        "Vielen Dank. Wir rufen Sie zurück, sobald Sie an der Reihe sind. Sie können jetzt auflegen.",
        "ありがとう ございます。 じゅんばんが きましたら おりかえし おでんわ いたします。 このまま おきり ください。"),
    prompt!("callback-in-about",
        "We expect to call you back in about",
        "Calculamos devolverle la llamada en unos",
        "Nous prévoyons de vous rappeler dans environ",
        "Wir rufen Sie voraussichtlich in etwa",
        "およそ"),
    prompt!("callback-minutes",
        "minutes.",
        "minutos.",
        "minutes.",
        "Minuten zurück.",
        "ふんごに おりかえし おでんわ する よていです。"),
    prompt!("callbacks-unavailable",
        "Callbacks are not available at the moment. Please stay on the line.",
        "En este momento no es posible devolverle la llamada. Por favor, permanezca en línea.",
        "Le rappel n'est pas disponible pour le moment. Veuillez rester en ligne.",
        "Rückrufe sind im Moment nicht möglich. Bitte bleiben Sie in der Leitung.",
        "ただいま おりかえしの うけつけは できません。 そのまま おまち ください。"),
    prompt!("already-pending",
        "A callback to this number is already pending. We will call you back when it is your turn.",
        "Ya hay una devolución de llamada pendiente para este número. Le llamaremos cuando sea su turno.",
        "Un rappel vers ce numéro est déjà prévu. Nous vous rappellerons lorsque ce sera votre tour.",
        "Für diese Nummer ist bereits ein Rückruf vorgemerkt. Wir rufen Sie zurück, sobald Sie an der Reihe sind.",
        "この ばんごうへの おりかえしは すでに うけつけて おります。 じゅんばんが きましたら おでんわ いたします。"),
    prompt!("returning-to-queue",
        "Returning you to the queue.",
        "Volviendo a la cola.",
        "Retour dans la file d'attente.",
        "Sie sind wieder in der Warteschlange.",
        "まちじょうたいに もどります。"),
    prompt!("callback-pending",
        "You already have a callback pending. To keep it and hang up, press 1. To cancel it and wait on the line, press 2.",
        "Ya tiene una devolución de llamada pendiente. Para mantenerla y colgar, pulse 1. Para cancelarla y esperar en línea, pulse 2.",
        "Vous avez déjà un rappel prévu. Pour le garder et raccrocher, appuyez sur 1. Pour l'annuler et patienter en ligne, appuyez sur 2.",
        "Für Sie ist bereits ein Rückruf vorgemerkt. Um ihn zu behalten und aufzulegen, drücken Sie die 1. Um ihn zu stornieren und in der Leitung zu warten, drücken Sie die 2.",
        "すでに おりかえしを うけつけて おります。 おりかえしを おまちに なる ばあいは いちを おして、 おでんわを おきり ください。 おりかえしを とりけして、 このまま おまちに なる ばあいは にを おして ください。"),
    prompt!("callback-canceled",
        "Your callback is canceled. Please stay on the line, you keep its place in the queue.",
        "Su devolución de llamada ha sido cancelada. Permanezca en línea, conserva su lugar en la cola.",
        "Votre rappel est annulé. Veuillez rester en ligne, vous gardez sa place dans la file d'attente.",
        "Ihr Rückruf ist storniert. Bitte bleiben Sie in der Leitung, Sie behalten seinen Platz in der Warteschlange.",
        "おりかえしを とりけしました。 じゅんばんは そのままです。 このまま おまち ください。"),
    prompt!("callback-in-progress",
        "We are calling you back right now. Please hang up to take the call.",
        "Le estamos devolviendo la llamada en este momento. Cuelgue para atenderla.",
        "Nous sommes en train de vous rappeler. Veuillez raccrocher pour prendre l'appel.",
        "Wir rufen Sie gerade zurück. Bitte legen Sie auf, um den Anruf anzunehmen.",
        "ただいま おりかえしの おでんわを おかけして おります。 いったん おきり ください。"),
    prompt!("agent-callback-for",
        "Callback request. Customer number",
        "Solicitud de devolución de llamada. Número del cliente",
        "Demande de rappel. Numéro du client",
        "Rückrufwunsch. Nummer des Kunden",
        "おりかえしの いらいです。 おきゃくさまの ばんごうは"),
    prompt!("agent-customer-name",
        "The customer said their name is",
        "El cliente ha dicho que se llama",
        "Le client a indiqué s'appeler",
        "Der Kunde hat seinen Namen angegeben als",
        "おきゃくさまの おなまえは"),
    prompt!("agent-options",
        "To call the customer now, press 1. To decline, press 2.",
        "Para llamar al cliente ahora, pulse 1. Para rechazar, pulse 2.",
        "Pour appeler le client maintenant, appuyez sur 1. Pour refuser, appuyez sur 2.",
        "Um den Kunden jetzt anzurufen, drücken Sie die 1. Zum Ablehnen drücken Sie die 2.",
        "いま おでんわ する ばあいは いちを、 ことわる ばあいは にを おして ください。"),
    prompt!("digit-0", "zero", "cero", "zéro", "null", "ぜろ"),
    prompt!("digit-1", "one", "uno", "un", "eins", "いち"),
    prompt!("digit-2", "two", "dos", "deux", "zwei", "に"),
    prompt!("digit-3", "three", "tres", "trois", "drei", "さん"),
    prompt!("digit-4", "four", "cuatro", "quatre", "vier", "よん"),
    prompt!("digit-5", "five", "cinco", "cinq", "fünf", "ご"),
    prompt!("digit-6", "six", "seis", "six", "sechs", "ろく"),
    prompt!("digit-7", "seven", "siete", "sept", "sieben", "なな"),
    prompt!("digit-8", "eight", "ocho", "huit", "acht", "はち"),
    prompt!("digit-9", "nine", "nueve", "neuf", "neun", "きゅう"),
    prompt!("digit-plus", "plus", "más", "plus", "plus", "プラス"),
];

/// Every prompt file name a deployment can replace, with its English text.
pub fn catalogue() -> impl Iterator<Item = (&'static str, &'static str)> {
    TEXTS.iter().map(|p| (p.name, p.texts[0]))
}

/// Why prompts could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("unsupported language {0:?} (shipped: en, es, fr, de, ja)")]
    Language(String),
    #[error("{tool} is needed to generate prompts (Debian package {package}): {source}")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} failed on {file}: {stderr}")]
    ToolFailed {
        tool: &'static str,
        file: String,
        stderr: String,
    },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Path(#[from] InvalidInput),
}

/// The prompts of one language under one sound root (a line's own greetings are played
/// by the engine instead of these).
#[derive(Debug, Clone)]
pub struct PromptSet {
    dir: MediaDir,
    language: String,
}

impl PromptSet {
    /// `root` is the sounds directory as FreeSWITCH sees it. `wanted` is tried in order
    /// (the line's language, then the daemon's default); a language is usable when
    /// `available` lists it, and English is the last resort.
    pub fn choose(root: &MediaDir, wanted: &[&str], available: &[String]) -> Self {
        let language = wanted
            .iter()
            .find(|l| available.iter().any(|a| a == *l))
            .copied()
            .unwrap_or(FALLBACK_LANGUAGE);
        Self {
            dir: root.join(language).join("callbackd"),
            language: language.to_owned(),
        }
    }

    /// Languages with a prompt directory under `root` (read where the daemon runs; when
    /// FreeSWITCH is elsewhere the operator lists them in the config instead).
    pub fn installed(root: &Path) -> Vec<String> {
        LANGUAGES
            .iter()
            .filter(|l| root.join(l).join("callbackd").is_dir())
            .map(|l| l.to_string())
            .collect()
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    /// The file for prompt `name`.
    pub fn file(&self, name: &str) -> MediaSource {
        self.dir.file(&format!("{name}.wav"))
    }

    /// The files that say `prompt`, in order.
    pub fn files(&self, prompt: &Prompt) -> Vec<MediaSource> {
        match prompt {
            Prompt::MenuOptions { own_number } => {
                let mut v = Vec::new();
                if *own_number {
                    v.push(self.file("menu-own-number"));
                }
                v.push(self.file("menu-other-number"));
                v.push(self.file("menu-back"));
                v
            }
            Prompt::InvalidChoice => vec![self.file("invalid-choice")],
            Prompt::EnterNumber => vec![self.file("enter-number")],
            Prompt::InvalidNumber => vec![self.file("invalid-number")],
            Prompt::ReadBack(number) => {
                let mut v = vec![self.file("callback-to")];
                v.extend(self.digits(number.as_str()));
                v
            }
            Prompt::ConfirmOptions => vec![self.file("confirm-options")],
            Prompt::RecordName => vec![self.file("record-name")],
            Prompt::ReturningToQueue => vec![self.file("returning-to-queue")],
            Prompt::CallbackPending => vec![self.file("callback-pending")],
        }
    }

    /// A number read digit by digit (`+` as "plus").
    pub fn digits(&self, number: &str) -> Vec<MediaSource> {
        number
            .chars()
            .filter_map(|c| match c {
                '+' => Some(self.file("digit-plus")),
                '0'..='9' => Some(self.file(&format!("digit-{c}"))),
                _ => None,
            })
            .collect()
    }
}

/// Several files as one playable source (`file_string://a!b`), so a single `playback` or
/// `play_and_get_digits` says them all and a digit barges into any of them.
pub fn sequence(files: &[MediaSource]) -> Result<MediaSource, InvalidInput> {
    match files {
        [one] => Ok(one.clone()),
        many => {
            let joined: Vec<&str> = many.iter().map(MediaSource::as_str).collect();
            MediaSource::new(&format!("file_string://{}", joined.join("!")))
        }
    }
}

/// Synthesize the default prompts for `languages` into `out/<lang>/callbackd/*.wav`
/// (8 kHz, 16-bit mono: FreeSWITCH's narrowband native rate) with espeak-ng and sox.
/// Returns the files written.
pub fn generate(out: &Path, languages: &[String]) -> Result<Vec<PathBuf>, PromptError> {
    let mut written = Vec::new();
    for lang in languages {
        let index = LANGUAGES
            .iter()
            .position(|l| l == lang)
            .ok_or_else(|| PromptError::Language(lang.clone()))?;
        let dir = out.join(lang).join("callbackd");
        std::fs::create_dir_all(&dir).map_err(|e| PromptError::Io(dir.clone(), e))?;
        for prompt in TEXTS {
            let target = dir.join(format!("{}.wav", prompt.name));
            let raw = dir.join(format!(".{}.espeak.wav", prompt.name));
            run(
                Command::new("espeak-ng")
                    .args(["-v", lang, "-s", "150", "-w"])
                    .arg(&raw)
                    .arg(prompt.texts[index]),
                "espeak-ng",
                "espeak-ng",
                &target,
            )?;
            let converted = run(
                Command::new("sox")
                    .arg(&raw)
                    .args(["-r", "8000", "-c", "1", "-b", "16"])
                    .arg(&target),
                "sox",
                "sox",
                &target,
            );
            let _ = std::fs::remove_file(&raw);
            converted?;
            written.push(target);
        }
    }
    Ok(written)
}

fn run(
    command: &mut Command,
    tool: &'static str,
    package: &'static str,
    file: &Path,
) -> Result<(), PromptError> {
    let output = command
        .output()
        .map_err(|source| PromptError::ToolMissing {
            tool,
            package,
            source,
        })?;
    if !output.status.success() {
        return Err(PromptError::ToolFailed {
            tool,
            file: file.display().to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::PhoneNumber;

    #[test]
    fn every_prompt_has_every_language() {
        for p in TEXTS {
            assert!(p.texts.iter().all(|t| !t.is_empty()), "{}", p.name);
        }
        let names: std::collections::BTreeSet<_> = TEXTS.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), TEXTS.len(), "duplicate prompt names");
    }

    #[test]
    fn language_falls_back_to_english() {
        let root = &MediaDir::new(Path::new("/usr/share/freeswitch/sounds")).unwrap();
        let available = vec!["en".to_owned(), "de".to_owned()];
        assert_eq!(
            PromptSet::choose(root, &["de", "en"], &available).language(),
            "de"
        );
        assert_eq!(
            PromptSet::choose(root, &["it", "de"], &available).language(),
            "de"
        );
        assert_eq!(
            PromptSet::choose(root, &["it"], &available).language(),
            "en"
        );
    }

    #[test]
    fn read_back_is_digit_by_digit() {
        let root = MediaDir::new(Path::new("/s")).unwrap();
        let set = PromptSet::choose(&root, &["fr"], &["fr".to_owned()]);
        let files = set.files(&Prompt::ReadBack(PhoneNumber::new("+331").unwrap()));
        let names: Vec<&str> = files.iter().map(MediaSource::as_str).collect();
        assert_eq!(
            names,
            [
                "/s/fr/callbackd/callback-to.wav",
                "/s/fr/callbackd/digit-plus.wav",
                "/s/fr/callbackd/digit-3.wav",
                "/s/fr/callbackd/digit-3.wav",
                "/s/fr/callbackd/digit-1.wav",
            ]
        );
        assert_eq!(
            sequence(&files[..2]).unwrap().as_str(),
            "file_string:///s/fr/callbackd/callback-to.wav!/s/fr/callbackd/digit-plus.wav"
        );
    }
}
