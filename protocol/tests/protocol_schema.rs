//! `protocol/` is the canonical, machine-readable form of WebSocket protocol
//! v1. This test keeps it honest, without a database:
//!
//! - the JSON Schemas under `protocol/schemas/` are exactly what
//!   `audotics_protocol::schemas()` generates from the Rust types
//!   (pretty JSON + trailing newline);
//! - `protocol/asyncapi.yaml` lists one message per schema file, and a
//!   schema file per message;
//! - every example frame in `protocol/README.md` (lines `actor → {…}` and
//!   `actor ← {…}`) is valid against its schema and round-trips through the
//!   Rust types unchanged; every message type has at least one example;
//! - a few bad frames are refused by both the schema and the hub's parser.
//!
//! After changing a wire type, regenerate the schemas with
//!
//! ```sh
//! UPDATE_PROTOCOL=1 cargo test -p audotics-protocol --test protocol_schema
//! ```
//!
//! and commit the changed files under `protocol/schemas/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use audotics_protocol::{
    self as protocol, ClientMsg, CloseCode, ServerMsg, CLIENT_TYPES, SERVER_TYPES,
};
use serde_json::Value;

fn protocol_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = protocol_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("schemas serialize");
    s.push('\n');
    s
}

/// Every `*.json` under `protocol/schemas/`, relative to `protocol/`.
fn committed_schema_files() -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let path = e.expect("readable dir entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|x| x == "json") {
                let rel = path.strip_prefix(base).expect("under protocol/");
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let base = protocol_dir();
    let mut out = BTreeSet::new();
    walk(&base.join("schemas"), &base, &mut out);
    out
}

#[test]
fn schemas_match_the_rust_types() {
    let generated = protocol::schemas();
    let update = std::env::var("UPDATE_PROTOCOL").is_ok_and(|v| v == "1");
    let wanted: BTreeSet<String> = generated.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(wanted.len(), generated.len(), "duplicate schema paths");
    let stale: Vec<String> = committed_schema_files()
        .difference(&wanted)
        .cloned()
        .collect();
    if update {
        for (rel, schema) in &generated {
            let path = protocol_dir().join(rel);
            std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(&path, pretty(schema)).expect("write schema");
        }
        for rel in &stale {
            std::fs::remove_file(protocol_dir().join(rel)).expect("remove stale schema");
        }
        return;
    }
    let mut drift = Vec::new();
    for (rel, schema) in &generated {
        let committed = std::fs::read_to_string(protocol_dir().join(rel)).unwrap_or_default();
        if committed != pretty(schema) {
            drift.push(format!("{rel} differs from the Rust types"));
        }
    }
    drift.extend(stale.iter().map(|rel| format!("{rel} is not generated")));
    assert!(
        drift.is_empty(),
        "protocol/schemas is out of date:\n  {}\nRegenerate with: UPDATE_PROTOCOL=1 cargo test -p audotics-protocol --test protocol_schema",
        drift.join("\n  ")
    );
}

#[test]
fn one_schema_per_message_type() {
    let paths: BTreeSet<String> = protocol::schemas().into_iter().map(|(p, _)| p).collect();
    let mut expected = BTreeSet::from([
        "schemas/client.json".to_owned(),
        "schemas/server.json".to_owned(),
    ]);
    expected.extend(
        CLIENT_TYPES
            .iter()
            .map(|t| format!("schemas/client/{t}.json")),
    );
    expected.extend(
        SERVER_TYPES
            .iter()
            .map(|t| format!("schemas/server/{t}.json")),
    );
    assert_eq!(paths, expected);
}

/// The message schemas of one direction, by `type`.
fn message_schemas(dir: &str) -> BTreeMap<String, Value> {
    let prefix = format!("schemas/{dir}/");
    protocol::schemas()
        .into_iter()
        .filter_map(|(p, v)| {
            let name = p.strip_prefix(&prefix)?.strip_suffix(".json")?.to_owned();
            Some((name, v))
        })
        .collect()
}

/// `components.messages` of the AsyncAPI document: message name → the
/// schema file its payload refers to. A small indentation reader (the
/// document is plain block YAML), so no YAML crate is needed.
fn asyncapi_messages(doc: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut in_components, mut in_messages) = (false, false);
    let mut current: Option<String> = None;
    for line in doc.lines() {
        let trimmed = line.trim_end();
        if trimmed.trim_start().starts_with('#') || trimmed.trim().is_empty() {
            continue;
        }
        let indent = trimmed.len() - trimmed.trim_start().len();
        if indent == 0 {
            in_components = trimmed == "components:";
            in_messages = false;
            current = None;
            continue;
        }
        if !in_components {
            continue;
        }
        if indent == 2 {
            in_messages = trimmed.trim() == "messages:";
            current = None;
            continue;
        }
        if !in_messages {
            continue;
        }
        if indent == 4 {
            let name = trimmed.trim().strip_suffix(':').expect("a message name");
            out.entry(name.to_owned()).or_default();
            current = Some(name.to_owned());
            continue;
        }
        if let (Some(name), Some(rest)) = (&current, trimmed.trim().strip_prefix("$ref:")) {
            let target = rest.trim().trim_matches(|c| c == '\'' || c == '"');
            if let Some(file) = target.strip_prefix("./") {
                out.get_mut(name)
                    .expect("current message")
                    .push(file.to_owned());
            }
        }
    }
    out
}

#[test]
fn asyncapi_lists_every_message_and_only_those() {
    let doc = read("asyncapi.yaml");
    assert!(doc.contains("asyncapi: 3.0.0"), "AsyncAPI 3.0.0 document");
    let messages = asyncapi_messages(&doc);
    let mut listed = BTreeSet::new();
    for (name, refs) in &messages {
        assert_eq!(
            refs.len(),
            1,
            "message {name} must have one payload $ref to a schema file, has {refs:?}"
        );
        let file = &refs[0];
        assert!(
            protocol_dir().join(file).is_file(),
            "message {name}: {file} does not exist"
        );
        assert!(
            listed.insert(file.clone()),
            "{file} is the payload of two messages"
        );
    }
    let mut expected = BTreeSet::new();
    expected.extend(
        CLIENT_TYPES
            .iter()
            .map(|t| format!("schemas/client/{t}.json")),
    );
    expected.extend(
        SERVER_TYPES
            .iter()
            .map(|t| format!("schemas/server/{t}.json")),
    );
    assert_eq!(listed, expected, "asyncapi.yaml messages vs. schema files");
    // Every close code the hub uses is documented in both documents.
    let readme = read("README.md");
    for code in close_codes() {
        assert!(
            doc.contains(&format!("{code}")),
            "asyncapi.yaml lacks close code {code}"
        );
        assert!(
            readme.contains(&format!("| {code} |")),
            "README.md close table lacks {code}"
        );
    }
    for code in [
        "unauthorized",
        "forbidden",
        "not_found",
        "invalid",
        "conflict",
        "rate_limited",
        "too_large",
        "unavailable",
    ] {
        assert!(doc.contains(code), "asyncapi.yaml lacks error code {code}");
        assert!(
            readme.contains(&format!("| `{code}` |")),
            "README.md lacks error code {code}"
        );
    }
}

fn close_codes() -> Vec<u16> {
    CloseCode::ALL.iter().map(|c| c.code()).collect()
}

/// The example frames of README.md: `(line number, client→server?, frame)`,
/// from the lines `actor → {…}` / `actor ← {…}` inside fenced code blocks.
fn readme_frames() -> Vec<(usize, bool, Value)> {
    let mut out = Vec::new();
    let mut in_code = false;
    for (i, line) in read("README.md").lines().enumerate() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let Some((actor, rest)) = line.split_once(' ') else {
            continue;
        };
        if !in_code || actor.is_empty() || !actor.chars().all(char::is_alphanumeric) {
            continue;
        }
        let (to_server, json) = if let Some(json) = rest.strip_prefix("→ {") {
            (true, json)
        } else if let Some(json) = rest.strip_prefix("← {") {
            (false, json)
        } else {
            continue;
        };
        let frame: Value = serde_json::from_str(&format!("{{{json}"))
            .unwrap_or_else(|e| panic!("README.md:{}: bad example frame: {e}", i + 1));
        out.push((i + 1, to_server, frame));
    }
    out
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::new(schema).expect("a valid draft 2020-12 schema")
}

fn errors(v: &jsonschema::Validator, frame: &Value) -> Vec<String> {
    v.iter_errors(frame)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// `v` without `null` object members (client frames may omit optional fields,
/// the Rust types write them back as `null`).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        v => v.clone(),
    }
}

#[test]
fn readme_examples_match_schemas_and_types() {
    let client = message_schemas("client");
    let server = message_schemas("server");
    let client_all = validator(
        &protocol::schemas()
            .into_iter()
            .find(|(p, _)| p == "schemas/client.json")
            .unwrap()
            .1,
    );
    let server_all = validator(
        &protocol::schemas()
            .into_iter()
            .find(|(p, _)| p == "schemas/server.json")
            .unwrap()
            .1,
    );
    let frames = readme_frames();
    let mut seen = BTreeSet::new();
    for (line, to_server, frame) in &frames {
        let at = format!("README.md:{line}");
        let ty = frame["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no type"))
            .to_owned();
        let (schemas, all, dir) = if *to_server {
            (&client, &client_all, "client")
        } else {
            (&server, &server_all, "server")
        };
        let schema = schemas
            .get(&ty)
            .unwrap_or_else(|| panic!("{at}: no {dir} message `{ty}`"));
        let errs = errors(&validator(schema), frame);
        assert!(
            errs.is_empty(),
            "{at}: {dir}/{ty}.json refuses the example: {errs:?}"
        );
        let errs = errors(all, frame);
        assert!(
            errs.is_empty(),
            "{at}: {dir}.json refuses the example: {errs:?}"
        );
        if *to_server {
            let text = frame.to_string();
            let msg = protocol::parse_client(&text)
                .unwrap_or_else(|(_, e)| panic!("{at}: the hub refuses the example: {e}"));
            let back = serde_json::to_value(&msg).expect("serialize");
            assert_eq!(
                without_nulls(&back),
                without_nulls(frame),
                "{at}: round trip"
            );
        } else {
            let msg: ServerMsg = serde_json::from_value(frame.clone())
                .unwrap_or_else(|e| panic!("{at}: not a ServerMsg: {e}"));
            let back: Value = serde_json::from_str(&msg.to_json()).expect("json");
            assert_eq!(
                &back, frame,
                "{at}: round trip (nullable fields must be present)"
            );
        }
        seen.insert((dir, ty));
    }
    for t in CLIENT_TYPES {
        assert!(
            seen.contains(&("client", t.to_string())),
            "README.md has no example of client `{t}`"
        );
    }
    for t in SERVER_TYPES {
        assert!(
            seen.contains(&("server", t.to_string())),
            "README.md has no example of server `{t}`"
        );
    }
}

#[test]
fn server_schemas_require_nullable_fields() {
    // "Nullable fields are present with null, never omitted."
    let update = &message_schemas("server")["update"];
    let change = &update["$defs"]["Change"];
    let required: Vec<&str> = change["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["track", "index", "fromIndex", "toIndex"] {
        assert!(required.contains(&f), "update.change.{f} must be required");
    }
    let v = validator(update);
    let frame = serde_json::json!({
        "type": "update", "version": 1, "at": "2026-01-01T00:00:00Z",
        "change": {"op": "remove", "entryId": "e", "index": 0, "by": "u"}
    });
    assert!(
        !v.is_valid(&frame),
        "an update omitting null fields must be refused"
    );
    let error = validator(&message_schemas("server")["error"]);
    assert!(
        !error.is_valid(&serde_json::json!({"type": "error", "code": "invalid", "message": "x"}))
    );
    assert!(error.is_valid(
        &serde_json::json!({"type": "error", "req": null, "code": "invalid", "message": "x"})
    ));
}

#[test]
fn bad_client_frames_are_refused_by_schema_and_hub() {
    let client = message_schemas("client");
    let bad = [
        // missing req
        r#"{"type":"remove","entryId":"e"}"#,
        // over-long req
        &format!(
            r#"{{"type":"remove","req":"{}","entryId":"e"}}"#,
            "r".repeat(65)
        ),
        // negative index
        r#"{"type":"reorder","req":"r","entryId":"e","toIndex":-1}"#,
        // wrong type
        r#"{"type":"join","sessionId":"s","token":7}"#,
        // both trackId and track
        r#"{"type":"add","req":"r","trackId":"t","track":{"spotifyId":"x","name":"n","artists":["a"],"album":"b"}}"#,
        // neither
        r#"{"type":"add","req":"r"}"#,
        // kind not a lowercase word
        r#"{"type":"interaction","req":"r","trackId":"t","kind":"Like!"}"#,
    ];
    for text in bad {
        let frame: Value = serde_json::from_str(text).unwrap();
        let ty = frame["type"].as_str().unwrap();
        assert!(
            !validator(&client[ty]).is_valid(&frame),
            "the {ty} schema accepts a bad frame: {text}"
        );
        // The parser refuses the shape errors; add's trackId/track and
        // interaction's kind are checked right after parsing (http::ws).
        if !matches!(ty, "add" | "interaction") {
            assert!(
                protocol::parse_client(text).is_err(),
                "the hub accepts {text}"
            );
        }
    }
    // Unknown fields are ignored by both (forward compatibility; a client may
    // tag every frame with a `req`).
    for text in [
        r#"{"type":"remove","req":"r","entryId":"e","extra":1}"#,
        r#"{"type":"leave","req":"l1"}"#,
        r#"{"type":"join","sessionId":"s","token":"t","req":"j1"}"#,
    ] {
        let frame: Value = serde_json::from_str(text).unwrap();
        let ty = frame["type"].as_str().unwrap();
        let errs = errors(&validator(&client[ty]), &frame);
        assert!(errs.is_empty(), "{text}: {errs:?}");
        protocol::parse_client(text).expect("hub accepts it");
    }
    // What the schemas allow, the parser accepts (optional fields omitted).
    for text in [
        r#"{"type":"join","sessionId":"s","token":"t"}"#,
        r#"{"type":"join","sessionId":"s","token":"t","since":null}"#,
        r#"{"type":"add","req":"r","trackId":"t"}"#,
        r#"{"type":"add","req":"r","trackId":null,"track":{"spotifyId":"x","name":"n","artists":["a"],"album":"b"},"index":null}"#,
        r#"{"type":"reorder","req":"r","entryId":"e","toIndex":0}"#,
    ] {
        let frame: Value = serde_json::from_str(text).unwrap();
        let ty = frame["type"].as_str().unwrap();
        let errs = errors(&validator(&client[ty]), &frame);
        assert!(errs.is_empty(), "{text}: {errs:?}");
        let msg: ClientMsg = protocol::parse_client(text).expect("hub accepts it");
        let back = serde_json::to_value(&msg).unwrap();
        assert_eq!(without_nulls(&back), without_nulls(&frame));
    }
}
