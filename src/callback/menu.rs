//! The caller's callback menu as a state machine: what to play, what to collect, what next.
//!
//! It knows prompts by meaning, not by file, and never touches a socket: the engine plays
//! each [`Step`] and feeds back what the caller did, so every branch is testable as plain code.

use std::time::Duration;

use super::number::{NumberRejected, NumberRules};
use crate::values::PhoneNumber;

/// Something the caller hears; the prompt set maps each to a sound file per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// "Press 1 to be called back on the number you are calling from (only when
    /// `own_number`), 2 to enter another number, 3 to go back to the queue."
    MenuOptions {
        own_number: bool,
    },
    InvalidChoice,
    /// "Enter the number starting with 00 or star and the country code, then press #."
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

/// The keys one collect step takes: `min..=max` digits, the first within `timeout`, ended
/// early by one of `terminators` (not part of the digits); the switch refuses digits that
/// do not match `regex` (a PCRE search, so anchor it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysWanted {
    pub min: u8,
    pub max: u8,
    pub terminators: &'static str,
    pub regex: &'static str,
    pub timeout: Duration,
}

impl KeysWanted {
    /// One key answering a question: a menu choice, a confirmation.
    pub fn choice(timeout: Duration) -> Self {
        Self {
            min: 1,
            max: 1,
            terminators: "",
            regex: CHOICE,
            timeout,
        }
    }
}

/// What the engine should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Play `prompts` (digits barge in) and collect the `keys` wanted.
    Collect {
        prompts: Vec<Prompt>,
        keys: KeysWanted,
    },
    /// Save the callback request for `number` now, and answer with
    /// [`Input::Requested`]: the caller keeps it even if they hang up during what follows
    /// (the name recording, the confirmation).
    Request { number: PhoneNumber },
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
    /// The callback to `number` is saved: the engine confirms it and ends the call.
    Callback {
        number: PhoneNumber,
        source: NumberSource,
        name_recorded: bool,
    },
    /// A callback to `number` was already pending in this queue: the engine says so and
    /// ends the call.
    AlreadyPending { number: PhoneNumber },
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
    /// How saving the request of a [`Step::Request`] went.
    Requested(RequestResult),
}

/// What became of a callback request the engine was asked to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    Saved,
    /// The number already has a callback open in this queue.
    AlreadyPending,
    /// The store could not take it: no promise is made, the caller waits on.
    Failed,
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
    Requesting {
        number: PhoneNumber,
        source: NumberSource,
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
}

/// The longest international number plus `00`.
const MAX_KEYED: u8 = 17;

/// A menu choice: digits only (`*` or `#` there is an invalid choice). Every one-key
/// question collects with it.
pub const CHOICE: &str = "\\d+";

/// A keyed number: digits after at most one leading `*`, the keypad's stand-in for `+`.
/// Brackets, not backslashes: nothing for FreeSWITCH's argument splitting to unescape.
const NUMBER: &str = "^[*]?[0-9]+$";

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
        };
        let step = menu.choose(Vec::new());
        (menu, step)
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
            State::Requesting { number, source } => self.on_requested(input, number, source),
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
                let step = Step::Request {
                    number: number.clone(),
                };
                self.state = State::Requesting { number, source };
                step
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

    fn on_requested(&mut self, input: Input, number: PhoneNumber, source: NumberSource) -> Step {
        match input {
            Input::Requested(RequestResult::Saved) if self.settings.record_name => {
                self.state = State::Recording { number, source };
                Step::Record {
                    prompts: vec![Prompt::RecordName],
                    max: self.settings.record_max,
                }
            }
            Input::Requested(RequestResult::Saved) => self.finish(MenuOutcome::Callback {
                number,
                source,
                name_recorded: false,
            }),
            Input::Requested(RequestResult::AlreadyPending) => {
                self.finish(MenuOutcome::AlreadyPending { number })
            }
            _ => self.finish(MenuOutcome::BackToQueue),
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
        self.collect(prompts, KeysWanted::choice(self.settings.input_timeout))
    }

    fn key_in(&mut self, lead: Vec<Prompt>) -> Step {
        self.state = State::Keying {
            tries_left: self.settings.number_tries.max(1),
        };
        self.collect_number(lead)
    }

    fn collect_number(&self, mut prompts: Vec<Prompt>) -> Step {
        prompts.push(Prompt::EnterNumber);
        let keys = KeysWanted {
            min: 1,
            max: MAX_KEYED,
            terminators: "#",
            regex: NUMBER,
            timeout: self.settings.input_timeout,
        };
        self.collect(prompts, keys)
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
        self.collect(prompts, KeysWanted::choice(self.settings.input_timeout))
    }

    fn collect(&self, prompts: Vec<Prompt>, keys: KeysWanted) -> Step {
        Step::Collect { prompts, keys }
    }

    fn finish(&mut self, outcome: MenuOutcome) -> Step {
        self.state = State::Finished;
        let prompts = match outcome {
            MenuOutcome::BackToQueue => vec![Prompt::ReturningToQueue],
            // The engine says when to expect the call, or names the pending one.
            MenuOutcome::Callback { .. } | MenuOutcome::AlreadyPending { .. } => vec![],
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
            Step::Request { .. } => &[],
        }
    }

    fn saved() -> Input {
        Input::Requested(RequestResult::Saved)
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
            Step::Request {
                number: number("+49301234567")
            }
        );
        assert_eq!(
            m.input(saved()),
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
                keys: KeysWanted {
                    max: 17,
                    terminators: "#",
                    regex: NUMBER,
                    ..
                },
                ..
            }
        ));
        let step = m.input(digits("0049"));
        assert_eq!(prompts(&step), [Prompt::InvalidNumber, Prompt::EnterNumber]);
        let step = m.input(digits("0301234567"));
        assert_eq!(prompts(&step)[0], Prompt::ReadBack(number("+49301234567")));
        // 2 = enter it again.
        let step = m.input(digits("2"));
        assert_eq!(prompts(&step), [Prompt::EnterNumber]);
        m.input(digits("0033612345678"));
        assert!(matches!(m.input(digits("1")), Step::Request { .. }));
        assert!(matches!(
            m.input(saved()),
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
    fn a_number_keyed_with_star_or_a_stray_star() {
        let (mut m, _) = menu(None, MenuSettings::default());
        m.input(digits("2"));
        // What the switch hands over when its regex refused the digits.
        let step = m.input(digits("49*30123456"));
        assert_eq!(prompts(&step), [Prompt::InvalidNumber, Prompt::EnterNumber]);
        let step = m.input(digits("*33612345678"));
        assert_eq!(prompts(&step)[0], Prompt::ReadBack(number("+33612345678")));
    }

    #[test]
    fn the_number_regex_takes_one_leading_star_only() {
        // FreeSWITCH searches with PCRE; the simulator with `regex`: the same here.
        let re = regex::Regex::new(NUMBER).unwrap();
        for good in ["*4930123456", "004930123456", "030123456", "4930123456"] {
            assert!(re.is_match(good), "{good}");
        }
        for bad in ["", "*", "**49", "49*30", "4930*", "12#3"] {
            assert!(!re.is_match(bad), "{bad}");
        }
        assert!(regex::Regex::new(CHOICE).unwrap().is_match("2"));
        assert!(!regex::Regex::new(CHOICE).unwrap().is_match("*"));
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
        // Saved before the recording: a caller who hangs up while saying their name keeps it.
        assert!(matches!(m.input(digits("1")), Step::Request { .. }));
        assert!(matches!(m.input(saved()), Step::Record { .. }));
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

    #[test]
    fn a_pending_or_unsaved_request_ends_the_menu_accordingly() {
        let (mut m, _) = menu(Some("+49301234567"), MenuSettings::default());
        m.input(digits("1"));
        m.input(digits("1"));
        assert_eq!(
            m.input(Input::Requested(RequestResult::AlreadyPending)),
            Step::Finish {
                prompts: vec![],
                outcome: MenuOutcome::AlreadyPending {
                    number: number("+49301234567")
                }
            }
        );

        let settings = MenuSettings {
            record_name: true,
            ..MenuSettings::default()
        };
        let (mut m, _) = menu(Some("+49301234567"), settings);
        m.input(digits("1"));
        m.input(digits("1"));
        // Not saved: no name is asked for, and the caller waits on.
        assert_eq!(
            m.input(Input::Requested(RequestResult::Failed)),
            Step::Finish {
                prompts: vec![Prompt::ReturningToQueue],
                outcome: MenuOutcome::BackToQueue,
            }
        );
    }
}
