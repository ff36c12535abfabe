//! The question put to a caller whose number already has a callback pending in the queue
//! they call again: keep it and hang up (1), or cancel it and wait on the line (2).
//!
//! A caller who answers nothing valid within the line's `menu_tries` keeps the callback:
//! it holds an earlier place than the new call, so keeping it loses nothing, and one
//! request per number means no agent is spent twice on one customer.

use std::time::Duration;

use super::{Input, KeysWanted, MenuSettings, Prompt};

/// What the repeat caller chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatChoice {
    /// Pressed 1: keep the callback, end this call.
    Keep,
    /// Pressed 2: cancel the callback, wait on the line in its place.
    Cancel,
    /// No valid key within the tries: treated as keep.
    NoChoice,
}

/// What the engine should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepeatStep {
    /// Play `prompts` (a digit barges in) and collect one digit.
    Ask {
        prompts: Vec<Prompt>,
        keys: KeysWanted,
    },
    Chosen(RepeatChoice),
}

/// One repeat caller's pass through the question.
#[derive(Debug, Clone)]
pub struct RepeatMenu {
    tries_left: u8,
    timeout: Duration,
}

impl RepeatMenu {
    /// Ask for the first time, with the line's menu tries and input timeout.
    pub fn start(settings: &MenuSettings) -> (Self, RepeatStep) {
        let menu = Self {
            tries_left: settings.menu_tries.max(1),
            timeout: settings.input_timeout,
        };
        let step = menu.ask(Vec::new());
        (menu, step)
    }

    /// Advance with what the caller keyed.
    pub fn input(&mut self, input: Input) -> RepeatStep {
        match input {
            Input::Digits(d) if d == "1" => RepeatStep::Chosen(RepeatChoice::Keep),
            Input::Digits(d) if d == "2" => RepeatStep::Chosen(RepeatChoice::Cancel),
            other => {
                self.tries_left = self.tries_left.saturating_sub(1);
                if self.tries_left == 0 {
                    return RepeatStep::Chosen(RepeatChoice::NoChoice);
                }
                // Silence only repeats the question; a wrong key is told so first.
                let lead = match other {
                    Input::NoInput => vec![],
                    _ => vec![Prompt::InvalidChoice],
                };
                self.ask(lead)
            }
        }
    }

    fn ask(&self, mut prompts: Vec<Prompt>) -> RepeatStep {
        prompts.push(Prompt::CallbackPending);
        RepeatStep::Ask {
            prompts,
            keys: KeysWanted::choice(self.timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Input {
        Input::Digits(s.into())
    }

    fn ask(lead: &[Prompt]) -> RepeatStep {
        let mut prompts = lead.to_vec();
        prompts.push(Prompt::CallbackPending);
        RepeatStep::Ask {
            prompts,
            keys: KeysWanted::choice(MenuSettings::default().input_timeout),
        }
    }

    #[test]
    fn one_keeps_and_two_cancels() {
        let (mut m, first) = RepeatMenu::start(&MenuSettings::default());
        assert_eq!(first, ask(&[]));
        assert_eq!(m.input(digits("1")), RepeatStep::Chosen(RepeatChoice::Keep));
        let (mut m, _) = RepeatMenu::start(&MenuSettings::default());
        assert_eq!(
            m.input(digits("2")),
            RepeatStep::Chosen(RepeatChoice::Cancel)
        );
    }

    #[test]
    fn a_wrong_key_is_told_silence_is_asked_again_and_the_tries_end_in_keeping() {
        let settings = MenuSettings {
            menu_tries: 3,
            ..MenuSettings::default()
        };
        let (mut m, _) = RepeatMenu::start(&settings);
        assert_eq!(m.input(digits("7")), ask(&[Prompt::InvalidChoice]));
        assert_eq!(m.input(Input::NoInput), ask(&[]));
        assert_eq!(
            m.input(Input::NoInput),
            RepeatStep::Chosen(RepeatChoice::NoChoice)
        );
        // A valid key on the last try still counts.
        let (mut m, _) = RepeatMenu::start(&settings);
        m.input(Input::NoInput);
        m.input(digits("9"));
        assert_eq!(
            m.input(digits("2")),
            RepeatStep::Chosen(RepeatChoice::Cancel)
        );
    }
}
