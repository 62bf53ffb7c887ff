//! Warnings sent with a response, as kube-apiserver sends them: `Warning: 299 - "<text>"`
//! headers, which kubectl prints as `Warning: <text>` and kube-rs logs.
//!
//! They are collected in a task-local while the request is handled: what finds one (field
//! validation of an update inside `update_with`'s retry loop) is deep in the request path, and
//! the response is built at its top.

use std::cell::RefCell;
use std::future::Future;

use axum::http::HeaderValue;

tokio::task_local! {
    static WARNINGS: RefCell<Vec<String>>;
}

/// Adds a warning to the response of the request being handled (none outside one).
pub fn warn(text: String) {
    let _ = WARNINGS.try_with(|w| {
        let mut w = w.borrow_mut();
        if !w.contains(&text) {
            w.push(text);
        }
    });
}

/// Runs a request's handling, and returns its outcome with the warnings it raised.
pub async fn collect<F: Future>(handling: F) -> (F::Output, Vec<String>) {
    WARNINGS
        .scope(RefCell::new(Vec::new()), async {
            let out = handling.await;
            (out, WARNINGS.with(|w| w.take()))
        })
        .await
}

/// A warning as its header value: code 299, no agent, the text quoted as Go's `%q` does.
pub fn header(text: &str) -> Option<HeaderValue> {
    let quoted = serde_json::to_string(text).ok()?;
    HeaderValue::from_str(&format!("299 - {quoted}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn warnings_belong_to_their_request() {
        warn("outside any request".into());
        let ((), got) = collect(async {
            warn("unknown field \"spec.foo\"".into());
            warn("unknown field \"spec.foo\"".into());
            tokio::task::yield_now().await;
            warn("second".into());
        })
        .await;
        assert_eq!(got, ["unknown field \"spec.foo\"", "second"]);
        assert_eq!(
            header(&got[0]).unwrap(),
            "299 - \"unknown field \\\"spec.foo\\\"\""
        );
    }
}
