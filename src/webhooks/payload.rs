//! What a webhook receiver is sent: one event of a callback's life with what a helpdesk
//! ticket needs, in a versioned schema, with the subject and comment in the line's
//! language.
//!
//! Schema `callbackd.webhook/1` (new fields may be added; none is removed or changes
//! meaning within a version): see the README's "Tickets" section.

use serde::Serialize;

use crate::store::{EventKind, OutboxItem};

/// The schema's name and version, sent in every payload.
pub const SCHEMA: &str = "callbackd.webhook/1";

/// One delivery's body.
#[derive(Debug, Serialize, PartialEq)]
pub struct Payload {
    pub schema: &'static str,
    /// The same for every delivery of this event, to this or any receiver: drop repeats.
    pub idempotency_key: String,
    /// The event: `accepted`, `declined_by_all`, `expired`, `duplicate_ignored`,
    /// `attempt_failed`, or any other kind the webhook asked for.
    pub kind: &'static str,
    /// What a helpdesk does with it: `open_ticket` (the moments the reference opens a
    /// ticket), `add_comment` (a customer who did not answer: a comment on the same
    /// ticket) or `none`.
    pub action: &'static str,
    /// The callback's id: the ticket's external id, so a comment finds its ticket.
    pub callback_id: String,
    pub queue: String,
    pub line: String,
    /// E.164.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The caller's recorded name (a file on the FreeSWITCH host), when they left one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_name_file: Option<String>,
    /// When it happened, ms since the epoch.
    pub at: u64,
    /// Why, when the event says (a hangup cause, the existing callback of a duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub subject: &'static str,
    pub comment: String,
    /// The event's own fields as recorded, for anything the above leaves out.
    pub fields: std::collections::BTreeMap<String, String>,
}

impl Payload {
    /// The payload of `item`, the caller's name file if any, written in `language`.
    pub fn of(item: &OutboxItem, caller_name_file: Option<String>, language: &str) -> Self {
        let e = &item.event;
        let field = |name: &str| e.field(name).filter(|v| !v.is_empty()).map(str::to_owned);
        let texts = Texts::of(language);
        let number = field("number");
        let agent = field("agent");
        let comment = texts.comment(
            e.kind,
            number.as_deref().unwrap_or("?"),
            agent.as_deref().unwrap_or("?"),
        );
        Self {
            schema: SCHEMA,
            idempotency_key: format!("{}:{}", item.queue, e.id),
            kind: e.kind.as_str(),
            action: match e.kind {
                EventKind::AttemptFailed => "add_comment",
                k if k.opens_ticket() || k == EventKind::DuplicateIgnored => "open_ticket",
                _ => "none",
            },
            callback_id: field("entry").unwrap_or_default(),
            queue: item.queue.to_string(),
            line: field("line").unwrap_or_default(),
            number,
            agent,
            caller_name_file,
            at: field("at").and_then(|at| at.parse().ok()).unwrap_or(0),
            cause: field("cause")
                .or_else(|| field("reason"))
                .or_else(|| field("existing")),
            subject: texts.subject,
            comment,
            fields: e.fields.clone().into_iter().collect(),
        }
    }
}

/// The words of one language.
struct Texts {
    subject: &'static str,
    accepted: &'static str,
    declined_by_all: &'static str,
    expired: &'static str,
    duplicate_ignored: &'static str,
    attempt_failed: &'static str,
    other: &'static str,
}

impl Texts {
    /// `{number}`, `{agent}` and `{kind}` are filled in.
    fn of(language: &str) -> Self {
        match language {
            "de" => Self {
                subject: "Rückruf",
                accepted: "Rückruf von {agent} angenommen: {number} wird zurückgerufen.",
                declined_by_all: "Rückrufanfrage von {number}: von allen Agenten abgelehnt.",
                expired: "Rückrufanfrage von {number} abgelaufen, ohne dass zurückgerufen wurde.",
                duplicate_ignored: "Rückrufanfrage in der Warteschlange: ignoriert, der Kunde ist bereits in der Warteschlange.",
                attempt_failed: "Rückruf an {number} versucht: der Kunde hat nicht abgenommen.",
                other: "Rückruf {number}: {kind}.",
            },
            "es" => Self {
                subject: "Devolución de llamada",
                accepted: "Devolución de llamada aceptada por {agent}: se llamará a {number}.",
                declined_by_all: "Solicitud de devolución de llamada de {number}: rechazada por todos los agentes.",
                expired: "La solicitud de devolución de llamada de {number} caducó sin que nadie llamara.",
                duplicate_ignored: "Solicitud de devolución de llamada en cola: Ignorado, el cliente ya está en la cola.",
                attempt_failed: "Se intentó devolver la llamada a {number}: el cliente no atendió.",
                other: "Devolución de llamada {number}: {kind}.",
            },
            "fr" => Self {
                subject: "Rappel",
                accepted: "Rappel accepté par {agent} : {number} va être rappelé.",
                declined_by_all: "Demande de rappel de {number} : refusée par tous les agents.",
                expired: "La demande de rappel de {number} a expiré sans que personne ne rappelle.",
                duplicate_ignored: "Demande de rappel en file d’attente : Ignoré, le client est déjà en file d’attente.",
                attempt_failed: "Un agent a essayé de rappeler {number} : le client n’a pas décroché.",
                other: "Rappel {number} : {kind}.",
            },
            "ja" => Self {
                subject: "折り返し電話",
                accepted: "{agent}が折り返し電話を受け付けました：{number}に折り返します。",
                declined_by_all: "{number}からの折り返し電話リクエスト：すべてのエージェントに拒否されました。",
                expired: "{number}からの折り返し電話リクエストは、折り返されないまま期限切れになりました。",
                duplicate_ignored: "キュー内の折り返し電話リクエスト：無視されました。カスタマーはすでにキューにいます。",
                attempt_failed: "{number}への折り返し電話が試行されましたが、カスタマーは応答しませんでした。",
                other: "折り返し電話 {number}：{kind}",
            },
            _ => Self {
                subject: "Callback",
                accepted: "Callback accepted by {agent}: calling {number} back.",
                declined_by_all: "Callback request from {number}: declined by every agent.",
                expired: "Callback request from {number} expired without a callback.",
                duplicate_ignored: "Callback request in queue: ignored, the customer is already in the queue.",
                attempt_failed: "A callback to {number} was attempted: the customer did not answer.",
                other: "Callback {number}: {kind}.",
            },
        }
    }

    fn comment(&self, kind: EventKind, number: &str, agent: &str) -> String {
        let text = match kind {
            EventKind::Accepted => self.accepted,
            EventKind::DeclinedByAll => self.declined_by_all,
            EventKind::Expired => self.expired,
            EventKind::DuplicateIgnored => self.duplicate_ignored,
            EventKind::AttemptFailed => self.attempt_failed,
            _ => self.other,
        };
        text.replace("{number}", number)
            .replace("{agent}", agent)
            .replace("{kind}", kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueName;
    use crate::store::StoredEvent;

    fn item(kind: &str, fields: &[(&str, &str)]) -> OutboxItem {
        let mut all: std::collections::HashMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert("event".into(), kind.into());
        OutboxItem {
            queue: QueueName::new("support").unwrap(),
            event: StoredEvent {
                id: "1700000000000-3".into(),
                kind: EventKind::named(kind).unwrap(),
                fields: all,
            },
            attempts: 0,
            first_failed: None,
            error: None,
        }
    }

    #[test]
    fn an_accepted_callback_opens_a_ticket_named_in_the_line_language() {
        let accepted = item(
            "accepted",
            &[
                ("entry", "cb-1"),
                ("line", "main"),
                ("number", "+4930555001"),
                ("agent", "alice"),
                ("at", "1700000000000"),
            ],
        );
        let p = Payload::of(&accepted, Some("/rec/cb-1.wav".into()), "de");
        assert_eq!(p.schema, SCHEMA);
        assert_eq!(p.idempotency_key, "support:1700000000000-3");
        assert_eq!((p.kind, p.action), ("accepted", "open_ticket"));
        assert_eq!(p.callback_id, "cb-1");
        assert_eq!(p.subject, "Rückruf");
        assert_eq!(
            p.comment,
            "Rückruf von alice angenommen: +4930555001 wird zurückgerufen."
        );
        assert_eq!(p.caller_name_file.as_deref(), Some("/rec/cb-1.wav"));
        assert_eq!(p.at, 1_700_000_000_000);
    }

    #[test]
    fn a_customer_who_did_not_answer_is_a_comment_on_the_same_ticket() {
        let failed = item(
            "attempt_failed",
            &[
                ("entry", "cb-1"),
                ("number", "+4930555001"),
                ("cause", "NO_ANSWER"),
            ],
        );
        let p = Payload::of(&failed, None, "en");
        assert_eq!((p.action, p.callback_id.as_str()), ("add_comment", "cb-1"));
        assert_eq!(p.cause.as_deref(), Some("NO_ANSWER"));
        assert_eq!(p.subject, "Callback");
        // Every language has its words; an unknown one falls back to English.
        for language in crate::prompts::LANGUAGES {
            assert!(!Payload::of(&failed, None, language).comment.contains('{'));
        }
        assert_eq!(Payload::of(&failed, None, "xx").subject, "Callback");
    }
}
