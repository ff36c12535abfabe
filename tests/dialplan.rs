//! The shipped dialplan snippets dropped into a vanilla FreeSWITCH: what each number reaches
//! when the XML dialplan hunts vanilla's extensions and ours in the order the switch reads them.
//!
//! Vanilla's extensions come from `tests/fixtures/vanilla-dialplan.txt`; ours are parsed from
//! `dialplan/`. The switch takes the first extension whose destination_number expression
//! matches (PCRE, hence fancy-regex: one vanilla expression uses a lookahead), so a number of
//! ours is safe when nothing read before it matches, and vanilla loses nothing when none of
//! our expressions matches a number a vanilla extension answers.

use std::path::Path;

use callbackd::config::Config;
use callbackd::queue::AgentState;
use fancy_regex::Regex;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// Where each snippet goes under conf/dialplan/, as the README's install steps say.
const DEFAULT_SNIPPET: &str = "default/00_callbackd.xml";
const PUBLIC_SNIPPET: &str = "public/00_callbackd.xml";

/// The agent feature codes the README promises, and the state each one sets.
const FEATURE_CODES: &[(&str, &str)] = &[
    ("*61", "available"),
    ("*62", "away"),
    ("*63", "transfers_only"),
    ("*64", "offline"),
];

/// One extension in hunt order, vanilla's or ours.
#[derive(Debug, Clone)]
struct Ext {
    /// The file under conf/dialplan/ it is read from.
    file: String,
    name: String,
    /// Its destination_number expression; `None` for extensions that act on other fields.
    expression: Option<Regex>,
    /// A number vanilla routes to it (vanilla's only).
    example: Option<String>,
    /// (application, data) in order (ours only).
    actions: Vec<(String, String)>,
}

impl Ext {
    fn matches(&self, number: &str) -> bool {
        self.expression
            .as_ref()
            .is_some_and(|e| e.is_match(number).unwrap())
    }

    fn ours(&self) -> bool {
        self.file == DEFAULT_SNIPPET || self.file == PUBLIC_SNIPPET
    }
}

/// A context as vanilla lays it out: its own file's extensions around one include point.
#[derive(Debug, Default)]
struct Context {
    before: Vec<Ext>,
    folder: Option<String>,
    included: Vec<Ext>,
    after: Vec<Ext>,
}

fn compile(name: &str, expression: &str) -> Regex {
    Regex::new(expression).unwrap_or_else(|e| panic!("{name}: {expression}: {e}"))
}

fn vanilla(context: &str) -> Context {
    let text = std::fs::read_to_string("tests/fixtures/vanilla-dialplan.txt").unwrap();
    let mut c = Context::default();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "five tab-separated columns: {line:?}");
        if cols[0] != context {
            continue;
        }
        let dash = |s: &str| (s != "-").then(|| s.to_owned());
        if cols[2] == "include" {
            c.folder = Some(cols[3].trim_end_matches("*.xml").to_owned());
            continue;
        }
        let ext = Ext {
            file: cols[1].to_owned(),
            name: cols[2].to_owned(),
            expression: dash(cols[3]).map(|e| compile(cols[2], &e)),
            example: dash(cols[4]),
            actions: Vec::new(),
        };
        let folder = c.folder.as_deref();
        if folder.is_some_and(|f| ext.file.starts_with(f)) {
            c.included.push(ext);
        } else if folder.is_some() {
            c.after.push(ext);
        } else {
            c.before.push(ext);
        }
    }
    c
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name).unwrap().map(|a| {
        a.normalized_value(XmlVersion::Implicit1_0)
            .unwrap()
            .into_owned()
    })
}

/// Our snippet's extensions. Each must have exactly one condition, on destination_number.
fn snippet(file: &str) -> Vec<Ext> {
    let text = std::fs::read_to_string(Path::new("dialplan").join(file)).unwrap();
    let mut reader = Reader::from_str(&text);
    let mut exts: Vec<Ext> = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "extension" => exts.push(Ext {
                    file: file.to_owned(),
                    name: attr(&e, "name").expect("extension name"),
                    expression: None,
                    example: None,
                    actions: Vec::new(),
                }),
                "condition" => {
                    let ext = exts.last_mut().expect("condition inside an extension");
                    assert_eq!(attr(&e, "field").as_deref(), Some("destination_number"));
                    assert!(ext.expression.is_none(), "{}: one condition", ext.name);
                    let expression = attr(&e, "expression").expect("an expression");
                    ext.expression = Some(compile(&ext.name, &expression));
                }
                "action" => exts.last_mut().unwrap().actions.push((
                    attr(&e, "application").unwrap(),
                    attr(&e, "data").unwrap_or_default(),
                )),
                "include" => {}
                other => panic!("{file}: unexpected <{other}>"),
            },
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(!exts.is_empty(), "{file} has extensions");
    exts
}

/// Vanilla's `context` with `ours` dropped into its folder: the extensions in hunt order.
/// Included files are read in file-name order (the switch globs the folder).
fn hunt_order(context: &str, ours: Vec<Ext>) -> Vec<Ext> {
    let c = vanilla(context);
    let folder = c.folder.expect("the context includes a folder");
    assert!(ours.iter().all(|e| e.file.starts_with(&folder)), "{folder}");
    let mut included = c.included;
    included.extend(ours);
    // Stable: extensions of one file keep their order.
    included.sort_by(|a, b| a.file.cmp(&b.file));
    c.before
        .into_iter()
        .chain(included)
        .chain(c.after)
        .collect()
}

fn route<'a>(order: &'a [Ext], number: &str) -> &'a Ext {
    order
        .iter()
        .find(|e| e.matches(number))
        .unwrap_or_else(|| panic!("nothing answers {number}"))
}

fn default_context() -> Vec<Ext> {
    hunt_order("default", snippet(DEFAULT_SNIPPET))
}

fn public_context() -> Vec<Ext> {
    hunt_order("public", snippet(PUBLIC_SNIPPET))
}

#[test]
fn the_fixture_examples_reach_their_own_extensions() {
    for order in [
        hunt_order("default", Vec::new()),
        hunt_order("public", Vec::new()),
    ] {
        for ext in order.iter().filter(|e| e.example.is_some()) {
            let example = ext.example.as_deref().unwrap();
            // "*" marks vanilla's catch-alls: any number nothing earlier took.
            let number = if example == "*" { "7701" } else { example };
            assert!(ext.matches(number), "{}: {number}", ext.name);
        }
    }
}

#[test]
fn vanilla_numbers_still_reach_vanilla_with_the_snippets_installed() {
    for order in [default_context(), public_context()] {
        for ext in order
            .iter()
            .filter(|e| e.example.as_deref().is_some_and(|x| x != "*"))
        {
            let number = ext.example.as_deref().unwrap();
            let reached = route(&order, number);
            assert!(
                !reached.ours(),
                "{number} (vanilla {}) would reach {}",
                ext.name,
                reached.name
            );
        }
    }
}

#[test]
fn the_feature_codes_reach_callbackd_agent_lua_with_states_the_daemon_takes() {
    let order = default_context();
    let lua = std::fs::read_to_string("lua/callbackd_agent.lua").unwrap();
    let valid_line = lua
        .lines()
        .find(|l| l.starts_with("local valid = {"))
        .expect("the script's table of states");
    let readme = std::fs::read_to_string("README.md").unwrap();
    for (code, state) in FEATURE_CODES {
        let ext = route(&order, code);
        assert!(ext.ours(), "{code} reaches vanilla's {}", ext.name);
        assert_eq!(
            ext.actions,
            vec![("lua".to_owned(), format!("callbackd_agent.lua {state}"))],
            "{code}"
        );
        assert!(valid_line.contains(&format!("{state} = true")), "{state}");
        let parsed: AgentState = state.parse().unwrap();
        assert!(parsed.is_chosen_by_people(), "{state}");
        assert!(readme.contains(&format!("`{code}`")), "README names {code}");
    }
    // Every agent extension of the snippet is one of the codes above.
    let agent_exts = snippet(DEFAULT_SNIPPET)
        .into_iter()
        .filter(|e| e.actions.iter().any(|(app, _)| app == "lua"))
        .count();
    assert_eq!(agent_exts, FEATURE_CODES.len());
}

#[test]
fn each_line_did_goes_from_public_to_an_extension_that_tags_and_parks_it() {
    let text = std::fs::read_to_string("callbackd.example.toml").unwrap();
    let config = Config::parse(Path::new("callbackd.example.toml"), &text).unwrap();
    let (public, default) = (public_context(), default_context());
    let readme = std::fs::read_to_string("README.md").unwrap();
    for line in &config.lines {
        let did = line.did.as_str();
        let entry = route(&public, did);
        assert!(entry.ours(), "DID {did} reaches vanilla's {}", entry.name);
        let transfers: Vec<&str> = entry
            .actions
            .iter()
            .filter(|(app, _)| app == "transfer")
            .map(|(_, data)| data.as_str())
            .collect();
        let [target] = transfers[..] else {
            panic!("{}: one transfer, got {transfers:?}", entry.name);
        };
        let parts: Vec<&str> = target.split(' ').collect();
        assert_eq!(parts[1..], ["XML", "default"], "{target}");
        let number = parts[0];

        let ext = route(&default, number);
        assert!(ext.ours(), "{number} reaches vanilla's {}", ext.name);
        let expected = [
            ("set", format!("callbackd_queue={}", line.queue)),
            ("set", format!("callbackd_line={}", line.name)),
            ("answer", String::new()),
            ("park", String::new()),
        ];
        let actions: Vec<(&str, String)> = ext
            .actions
            .iter()
            .map(|(app, data)| (app.as_str(), data.clone()))
            .collect();
        assert_eq!(actions, expected, "{}", ext.name);
        assert!(
            readme.contains(&format!("`{number}`")),
            "README names {number}"
        );
    }
}
