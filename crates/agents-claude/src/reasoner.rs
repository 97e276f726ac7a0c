//! The optional AI reasoner (`[agent] decide = true`): the model chooses
//! the cycle's actions among those the rules allow, after reading the
//! engine's state through read-only tools (state, positions, events,
//! statistics). No tool trades or changes anything. The system prompt and
//! the tools carry `cache_control`, so repeated cycles read them from the
//! prompt cache. Any failure is an error the caller answers by keeping the
//! rules' choice.

use serde::Deserialize;
use serde_json::{Value, json};
use thiserror::Error;

use crate::api::{
    ContentBlock, Message, MessagesRequest, OutputConfig, Role, StopReason, SystemBlock, Tool,
    Usage,
};
use crate::client::{ApiError, MessagesClient};

/// The read-only tools, by name, with what each returns.
pub const TOOLS: [(&str, &str); 4] = [
    (
        "get_state",
        "The engine's state now: market phase, trading state, open trades, free position slots, working orders, unrealized P&L.",
    ),
    (
        "get_positions",
        "Open positions as the position monitor sees them: contract, quantity, days to expiry, mark, unrealized P&L, alerts.",
    ),
    (
        "get_events",
        "Market and system events detected this cycle (VIX spikes, regime shifts, trades closed, errors).",
    ),
    (
        "get_statistics",
        "Statistics of the closed trades: count, win rate, mean ROI, total P&L.",
    ),
];

/// The reasoner's instructions (fixed, cached).
pub const SYSTEM_PROMPT: &str = "You decide what an automated naked-put trading engine does in \
this cycle. The rules have already chosen a set of actions; you may keep all of them or leave \
some out, but you can never add an action the rules did not allow. Actions: cancel_stale \
(cancel orders unfilled too long), manage_exits (close positions at their target, stop or time \
exit), scan_entries (look for new puts to sell; every order still passes the risk governor), \
analyze_performance, learn, idle. Exits and cancellations are always carried out whatever you \
choose; your real choice is whether to scan for entries now. Use the read-only tools to look at \
the state, positions, events and statistics when it helps. Answer with the JSON object the \
schema describes: the actions to take and a one-sentence reason.";

/// The model's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Action names, each one of the allowed.
    pub actions: Vec<String>,
    pub reason: String,
    /// Tokens over every turn.
    pub usage: Usage,
    /// Tools the model called, in order.
    pub tool_calls: Vec<String>,
}

/// Why the rules decide this cycle.
#[derive(Debug, Error)]
pub enum ReasonError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the model stopped with {0}")]
    Stopped(String),
    #[error("the answer does not follow the schema: {0}")]
    Schema(String),
    #[error("the model chose {0:?}, which the rules do not allow now")]
    NotAllowed(String),
    #[error("no answer after {0} tool turns")]
    TooManyTurns(usize),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceAnswer {
    actions: Vec<String>,
    reason: String,
}

fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["actions", "reason"],
        "properties": {
            "actions": {"type": "array", "items": {"type": "string"}},
            "reason": {"type": "string"}
        }
    })
}

/// The tools as sent (the last one marks the cache breakpoint).
#[must_use]
pub fn tools() -> Vec<Tool> {
    let n = TOOLS.len();
    TOOLS
        .iter()
        .enumerate()
        .map(|(i, (name, description))| Tool {
            name: (*name).into(),
            description: (*description).into(),
            input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            cache_control: (i + 1 == n).then(crate::api::CacheControl::ephemeral),
        })
        .collect()
}

/// Most request/answer rounds in one choice.
pub const MAX_TURNS: usize = 5;

/// Asks the model to choose among `allowed` (the rules' choice).
/// `context` holds the tools' answers under `state`, `positions`,
/// `events` and `statistics`. Returns the tokens every answered turn
/// cost, whatever the outcome, and the choice.
///
/// # Errors
/// Any failure: the caller keeps the rules' choice.
pub async fn choose(
    client: &MessagesClient,
    model: &str,
    max_tokens: u32,
    allowed: &[&str],
    context: &Value,
) -> (Usage, Result<Choice, ReasonError>) {
    let mut usage = Usage::default();
    let result = choose_counting(client, model, max_tokens, allowed, context, &mut usage).await;
    (usage, result)
}

async fn choose_counting(
    client: &MessagesClient,
    model: &str,
    max_tokens: u32,
    allowed: &[&str],
    context: &Value,
    usage: &mut Usage,
) -> Result<Choice, ReasonError> {
    let mut messages = vec![Message::user_text(
        json!({"allowed_actions": allowed, "rules_choice": allowed}).to_string(),
    )];
    let mut tool_calls = Vec::new();
    for _ in 0..MAX_TURNS {
        let request = MessagesRequest {
            model: model.into(),
            max_tokens,
            system: vec![SystemBlock::text(SYSTEM_PROMPT).cached()],
            messages: messages.clone(),
            tools: tools(),
            output_config: Some(OutputConfig::json_schema(schema())),
        };
        let reply = client.create(&request).await?;
        let response = reply.response;
        *usage = usage.plus(response.usage);
        match response.stop_reason {
            Some(StopReason::ToolUse) => {
                let mut results = Vec::new();
                for (id, name, _) in response.tool_uses() {
                    tool_calls.push(name.to_owned());
                    let key = name.strip_prefix("get_").unwrap_or(name);
                    let (content, is_error) = match context.get(key) {
                        Some(v) if TOOLS.iter().any(|(n, _)| *n == name) => (v.to_string(), false),
                        _ => (format!("unknown tool {name}"), true),
                    };
                    results.push(ContentBlock::ToolResult {
                        tool_use_id: id.to_owned(),
                        content,
                        is_error,
                    });
                }
                messages.push(Message {
                    role: Role::Assistant,
                    content: response
                        .content
                        .into_iter()
                        .filter(|b| !matches!(b, ContentBlock::Unknown))
                        .collect(),
                });
                messages.push(Message {
                    role: Role::User,
                    content: results,
                });
            }
            Some(StopReason::EndTurn) => {
                let answer: ChoiceAnswer = serde_json::from_str(response.text().trim())
                    .map_err(|e| ReasonError::Schema(e.to_string()))?;
                if let Some(bad) = answer
                    .actions
                    .iter()
                    .find(|a| !allowed.contains(&a.as_str()))
                {
                    return Err(ReasonError::NotAllowed(bad.clone()));
                }
                return Ok(Choice {
                    actions: answer.actions,
                    reason: answer.reason,
                    usage: *usage,
                    tool_calls,
                });
            }
            other => return Err(ReasonError::Stopped(format!("{other:?}"))),
        }
    }
    Err(ReasonError::TooManyTurns(MAX_TURNS))
}
