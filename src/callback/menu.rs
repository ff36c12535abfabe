//! The caller's callback menu as a state machine: what to play, what to collect, what next.
//!
//! It knows prompts by meaning, not by file, and never touches a socket: the engine plays
//! each [`Step`] and feeds back what the caller did, so every branch is testable as plain code.

use std::time::Duration;

use super::number::{NumberRejected, NumberRules};
use crate::switch::PhoneNumber;

/// Something the caller hears; the prompt set maps each to a sound file per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// "Press 1 to be called back on the number you are calling from (only when
    /// `own_number`), 2 to enter another number, 3 to go back to the queue."
    MenuOptions {
        own_number: bool,
    },
    InvalidChoice,
    /// "Enter the number with 00 and the country code, then press #."
    EnterNumber,
    InvalidNumber,
    /// "We will call you back on", then the number digit by digit.
    ReadBack(PhoneNumber),
    /// "Press 1 to confirm, 2 to enter it again."
    ConfirmOptions,
    /// "After the tone, say your name."
    RecordName,
    ReturningToQueue,
    /// To a caller whose number has a callback pending: "press 1 to keep it and hang up,
    /// 2 to cancel it and wait on the line."
    CallbackPending,
}

/// What the engine should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Play `prompts` (digits barge in) and collect `min..=max` digits, ended early by
    /// one of `terminators`.
    Collect {
        prompts: Vec<Prompt>,
        min: u8,
        max: u8,
        terminators: &'static str,
        timeout: Duration,
    },
    /// Play `prompts`, then record the caller's name for `max`.
    Record { prompts: Vec<Prompt>, max: Duration },
    /// The menu is over: play `prompts`, then act on `outcome`.
    Finish {
        prompts: Vec<Prompt>,
        outcome: MenuOutcome,
    },
}

/// Where the number to call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberSource {
    CallerId,
    Keyed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuOutcome {
    /// Queue a callback to `number`; the engine confirms it (or says one is pending).
    Callback {
        number: PhoneNumber,
        source: NumberSource,
        name_recorded: bool,
    },
    /// Back to waiting, same position.
    BackToQueue,
}

/// What the caller did in answer to the last step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Digits(String),
    /// Nothing keyed before the timeout (or the recording failed).
    NoInput,
    Recorded,
}

/// Tunables of one line's menu.
#[derive(Debug, Clone)]
pub struct MenuSettings {
    pub menu_tries: u8,
    pub number_tries: u8,
    pub confirm_tries: u8,
    pub record_name: bool,
    pub record_max: Duration,
    /// Time to wait for the first digit after a prompt.
    pub input_timeout: Duration,
}

impl Default for MenuSettings {
    fn default() -> Self {
        Self {
            menu_tries: 3,
            number_tries: 3,
            confirm_tries: 3,
            record_name: false,
            record_max: Duration::from_secs(5),
            input_timeout: Duration::from_secs(7),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Choosing {
        tries_left: u8,
    },
    Keying {
        tries_left: u8,
    },
    Confirming {
        number: PhoneNumber,
        source: NumberSource,
        tries_left: u8,
    },
    Recording {
        number: PhoneNumber,
        source: NumberSource,
    },
    Finished,
}

/// One caller's pass through the menu.
#[derive(Debug, Clone)]
pub struct CallbackMenu {
    settings: MenuSettings,
    rules: NumberRules,
    own_number: Option<PhoneNumber>,
    state: State,
    last_rejection: Option<NumberRejected>,
}

/// The longest international number plus `00`.
const MAX_KEYED: u8 = 17;

impl CallbackMenu {
    /// Open the menu. `own_number` is the caller's dialable number, if any (see
    /// [`NumberRules::caller_number`]); without one, option 1 is not offered.
    pub fn start(
        settings: MenuSettings,
        rules: NumberRules,
        own_number: Option<PhoneNumber>,
    ) -> (Self, Step) {
        let menu = Self {
            state: State::Choosing {
                tries_left: settings.menu_tries.max(1),
            },
            settings,
            rules,
            own_number,
            last_rejection: None,
        };
        let step = menu.choose(Vec::new());
        (menu, step)
    }

    /// Why the last keyed number was refused, for the records.
    pub fn last_rejection(&self) -> Option<&NumberRejected> {
        self.last_rejection.as_ref()
    }

    /// Advance with what the caller did.
    pub fn input(&mut self, input: Input) -> Step {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Choosing { tries_left } => self.on_choice(input, tries_left),
            State::Keying { tries_left } => self.on_keyed(input, tries_left),
            State::Confirming {
                number,
                source,
                tries_left,
            } => self.on_confirm(input, number, source, tries_left),
            State::Recording { number, source } => self.finish(MenuOutcome::Callback {
                number,
                source,
                name_recorded: input == Input::Recorded,
            }),
            State::Finished => self.finish(MenuOutcome::BackToQueue),
        }
    }

    fn on_choice(&mut self, input: Input, tries_left: u8) -> Step {
        match input {
            Input::Digits(d) if d == "1" && self.own_number.is_some() => {
                let number = self.own_number.clone().expect("checked above");
                self.confirm(number, NumberSource::CallerId)
            }
            Input::Digits(d) if d == "2" => self.key_in(Vec::new()),
            Input::Digits(d) if d == "3" => self.finish(MenuOutcome::BackToQueue),
            other => self.retry(tries_left, |menu, tries_left| {
                menu.state = State::Choosing { tries_left };
                let lead = match other {
                    Input::NoInput => vec![],
                    _ => vec![Prompt::InvalidChoice],
                };
                menu.choose(lead)
            }),
        }
    }

    fn on_keyed(&mut self, input: Input, tries_left: u8) -> Step {
        let digits = match input {
            Input::Digits(d) => d,
            _ => String::new(),
        };
        match self.rules.keyed(&digits) {
            Ok(number) => self.confirm(number, NumberSource::Keyed),
            Err(why) => {
                let lead = if why == NumberRejected::Empty {
                    vec![]
                } else {
                    vec![Prompt::InvalidNumber]
                };
                self.last_rejection = Some(why);
                self.retry(tries_left, |menu, tries_left| {
                    menu.state = State::Keying { tries_left };
                    menu.collect_number(lead)
                })
            }
        }
    }

    fn on_confirm(
        &mut self,
        input: Input,
        number: PhoneNumber,
        source: NumberSource,
        tries_left: u8,
    ) -> Step {
        match input {
            Input::Digits(d) if d == "1" => {
                if self.settings.record_name {
                    self.state = State::Recording { number, source };
                    Step::Record {
                        prompts: vec![Prompt::RecordName],
                        max: self.settings.record_max,
                    }
                } else {
                    self.finish(MenuOutcome::Callback {
                        number,
                        source,
                        name_recorded: false,
                    })
                }
            }
            Input::Digits(d) if d == "2" => self.key_in(Vec::new()),
            other => self.retry(tries_left, |menu, tries_left| {
                let lead = match other {
                    Input::NoInput => vec![],
                    _ => vec![Prompt::InvalidChoice],
                };
                menu.state = State::Confirming {
                    number: number.clone(),
                    source,
                    tries_left,
                };
                menu.read_back(lead, &number)
            }),
        }
    }

    /// Spend one try: repeat via `again`, or go back to the queue when none is left.
    fn retry(&mut self, tries_left: u8, again: impl FnOnce(&mut Self, u8) -> Step) -> Step {
        match tries_left.saturating_sub(1) {
            0 => self.finish(MenuOutcome::BackToQueue),
            left => again(self, left),
        }
    }

    fn choose(&self, mut prompts: Vec<Prompt>) -> Step {
        prompts.push(Prompt::MenuOptions {
            own_number: self.own_number.is_some(),
        });
        self.collect(prompts, 1, 1, "")
    }

    fn key_in(&mut self, lead: Vec<Prompt>) -> Step {
        self.state = State::Keying {
            tries_left: self.settings.number_tries.max(1),
        };
        self.collect_number(lead)
    }

    fn collect_number(&self, mut prompts: Vec<Prompt>) -> Step {
        prompts.push(Prompt::EnterNumber);
        self.collect(prompts, 1, MAX_KEYED, "#")
    }

    fn confirm(&mut self, number: PhoneNumber, source: NumberSource) -> Step {
        let step = self.read_back(Vec::new(), &number);
        self.state = State::Confirming {
            number,
            source,
            tries_left: self.settings.confirm_tries.max(1),
        };
        step
    }

    fn read_back(&self, mut prompts: Vec<Prompt>, number: &PhoneNumber) -> Step {
        prompts.push(Prompt::ReadBack(number.clone()));
        prompts.push(Prompt::ConfirmOptions);
        self.collect(prompts, 1, 1, "")
    }

    fn collect(&self, prompts: Vec<Prompt>, min: u8, max: u8, terminators: &'static str) -> Step {
        Step::Collect {
            prompts,
            min,
            max,
            terminators,
            timeout: self.settings.input_timeout,
        }
    }

    fn finish(&mut self, outcome: MenuOutcome) -> Step {
        self.state = State::Finished;
        let prompts = match outcome {
            MenuOutcome::BackToQueue => vec![Prompt::ReturningToQueue],
            // The engine decides between "we will call you back" and "already pending".
            MenuOutcome::Callback { .. } => vec![],
        };
        Step::Finish { prompts, outcome }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::number::DialingPolicy;

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::new(s).unwrap()
    }

    fn menu(own: Option<&str>, settings: MenuSettings) -> (CallbackMenu, Step) {
        let rules = NumberRules::new(Some("DE"), DialingPolicy::default()).unwrap();
        CallbackMenu::start(settings, rules, own.map(number))
    }

    fn digits(s: &str) -> Input {
        Input::Digits(s.into())
    }

    fn prompts(step: &Step) -> &[Prompt] {
        match step {
            Step::Collect { prompts, .. }
            | Step::Record { prompts, .. }
            | Step::Finish { prompts, .. } => prompts,
        }
    }

    #[test]
    fn option_1_reads_back_the_callers_own_number() {
        let (mut m, first) = menu(Some("+49301234567"), MenuSettings::default());
        assert_eq!(prompts(&first), [Prompt::MenuOptions { own_number: true }]);
        let step = m.input(digits("1"));
        assert_eq!(
            prompts(&step),
            [
                Prompt::ReadBack(number("+49301234567")),
                Prompt::ConfirmOptions
            ]
        );
        assert_eq!(
            m.input(digits("1")),
            Step::Finish {
                prompts: vec![],
                outcome: MenuOutcome::Callback {
                    number: number("+49301234567"),
                    source: NumberSource::CallerId,
                    name_recorded: false
                }
            }
        );
    }

    #[test]
    fn option_1_is_not_offered_without_a_number() {
        let (mut m, first) = menu(None, MenuSettings::default());
        assert_eq!(prompts(&first), [Prompt::MenuOptions { own_number: false }]);
        let step = m.input(digits("1"));
        assert_eq!(
            prompts(&step),
            [
                Prompt::InvalidChoice,
                Prompt::MenuOptions { own_number: false }
            ]
        );
    }

    #[test]
    fn option_2_invalid_then_valid_national_number() {
        let (mut m, _) = menu(None, MenuSettings::default());
        let step = m.input(digits("2"));
        assert!(matches!(
            step,
            Step::Collect {
                max: 17,
                terminators: "#",
                ..
            }
        ));
        let step = m.input(digits("0049"));
        assert_eq!(prompts(&step), [Prompt::InvalidNumber, Prompt::EnterNumber]);
        assert_eq!(m.last_rejection(), Some(&NumberRejected::Invalid));
        let step = m.input(digits("0301234567"));
        assert_eq!(prompts(&step)[0], Prompt::ReadBack(number("+49301234567")));
        // 2 = enter it again.
        let step = m.input(digits("2"));
        assert_eq!(prompts(&step), [Prompt::EnterNumber]);
        m.input(digits("0033612345678"));
        assert!(matches!(
            m.input(digits("1")),
            Step::Finish {
                outcome: MenuOutcome::Callback {
                    source: NumberSource::Keyed,
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn option_3_and_exhausted_tries_return_to_the_queue() {
        let back = Step::Finish {
            prompts: vec![Prompt::ReturningToQueue],
            outcome: MenuOutcome::BackToQueue,
        };
        let (mut m, _) = menu(None, MenuSettings::default());
        assert_eq!(m.input(digits("3")), back);

        let (mut m, _) = menu(None, MenuSettings::default());
        assert_eq!(
            prompts(&m.input(Input::NoInput)),
            [Prompt::MenuOptions { own_number: false }]
        );
        assert_eq!(prompts(&m.input(digits("9")))[0], Prompt::InvalidChoice);
        assert_eq!(m.input(Input::NoInput), back);

        let (mut m, _) = menu(None, MenuSettings::default());
        m.input(digits("2"));
        m.input(digits("1"));
        m.input(digits("00999"));
        assert_eq!(m.input(digits("12")), back);
    }

    #[test]
    fn name_recording_when_the_line_asks_for_it() {
        let settings = MenuSettings {
            record_name: true,
            ..MenuSettings::default()
        };
        let (mut m, _) = menu(Some("+49301234567"), settings);
        m.input(digits("1"));
        assert!(matches!(m.input(digits("1")), Step::Record { .. }));
        assert!(matches!(
            m.input(Input::Recorded),
            Step::Finish {
                outcome: MenuOutcome::Callback {
                    name_recorded: true,
                    ..
                },
                ..
            }
        ));
    }
}
