//! The shipped prompt set is complete, and the generation step that made it still works.
//!
//! Generation needs espeak-ng and sox (Debian packages); `.ci/run` installs both.

use std::path::{Path, PathBuf};

use callbackd::prompts::{catalogue, generate, LANGUAGES};

fn wav_rate(path: &Path) -> u32 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"RIFF", "{}", path.display());
    assert_eq!(&bytes[8..12], b"WAVE", "{}", path.display());
    assert!(bytes.len() > 1000, "{} is nearly empty", path.display());
    u32::from_le_bytes(bytes[24..28].try_into().unwrap())
}

#[test]
fn shipped_sounds_cover_every_prompt_in_every_language() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sounds");
    for lang in LANGUAGES {
        for (name, _) in catalogue() {
            let file = root
                .join(lang)
                .join("callbackd")
                .join(format!("{name}.wav"));
            assert_eq!(wav_rate(&file), 8000);
        }
    }
}

#[test]
fn generate_synthesizes_narrowband_wavs() {
    let out = std::env::temp_dir().join(format!("callbackd-prompts-{}", std::process::id()));
    let written = generate(&out, &["ja".to_owned()]).expect("espeak-ng and sox installed");
    assert_eq!(written.len(), catalogue().count());
    for file in &written {
        assert_eq!(wav_rate(file), 8000);
    }
    std::fs::remove_dir_all(&out).unwrap();
    assert!(generate(&out, &["xx".to_owned()]).is_err());
}
