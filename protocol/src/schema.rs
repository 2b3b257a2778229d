//! JSON Schema generation (schemars) for `protocol/schemas/`: one schema per
//! message and one per direction, made self-contained and canonical (sorted
//! keys) so the committed files do not depend on serde_json features.

use crate::frames::{ClientMsg, ServerMsg};

/// The JSON Schemas (draft 2020-12) of protocol v1, generated from the frame
/// types: one per message (`schemas/client/<type>.json`,
/// `schemas/server/<type>.json`) and one per direction (`schemas/client.json`,
/// `schemas/server.json`). Paths are relative to the repository's
/// `protocol/` folder; `tests/protocol_schema.rs` keeps the files there equal
/// to this.
///
/// Client schemas describe what the hub accepts (optional fields may be
/// omitted; unknown fields are ignored). Server schemas describe what it sends: every
/// field is required, nullable ones are present with `null`.
pub fn schemas() -> Vec<(String, serde_json::Value)> {
    use schemars::generate::SchemaSettings;
    let client = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<ClientMsg>()
        .to_value();
    let server = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<ServerMsg>()
        .to_value();
    let mut out = Vec::new();
    for (dir, root, title) in [
        ("client", client, "Client → server frame"),
        ("server", server, "Server → client frame"),
    ] {
        for (name, schema) in split_messages(&root, dir) {
            out.push((format!("schemas/{dir}/{name}.json"), canonical(schema)));
        }
        let mut root = root;
        root["title"] = title.into();
        out.push((format!("schemas/{dir}.json"), canonical(root)));
    }
    out
}

/// One self-contained schema per variant of an internally tagged enum's
/// root schema, named by its `type` constant.
fn split_messages(root: &serde_json::Value, dir: &str) -> Vec<(String, serde_json::Value)> {
    use serde_json::{json, Value};
    let empty = serde_json::Map::new();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let variants = root
        .get("oneOf")
        .and_then(Value::as_array)
        .expect("a tagged enum's schema has oneOf");
    let mut out = Vec::new();
    for v in variants {
        let mut v = v.as_object().expect("variant schema is an object").clone();
        let name = v["properties"]["type"]["const"]
            .as_str()
            .expect("variant has a `type` constant")
            .to_owned();
        // A newtype variant (`snapshot`) refers to its payload struct:
        // inline that struct's fields next to `type`.
        if let Some(Value::String(r)) = v.remove("$ref") {
            let def = r
                .strip_prefix("#/$defs/")
                .and_then(|d| defs.get(d))
                .and_then(Value::as_object)
                .expect("$ref names a definition");
            for (k, val) in def {
                match k.as_str() {
                    "properties" => {
                        let props = v["properties"].as_object_mut().expect("properties");
                        for (pk, pv) in val.as_object().expect("properties") {
                            props.insert(pk.clone(), pv.clone());
                        }
                    }
                    "required" => {
                        let req = v["required"].as_array_mut().expect("required");
                        req.extend(val.as_array().expect("required").iter().cloned());
                    }
                    _ => {
                        v.entry(k.clone()).or_insert_with(|| val.clone());
                    }
                }
            }
        }
        let direction = if dir == "client" {
            "client → server"
        } else {
            "server → client"
        };
        let mut schema = serde_json::Map::new();
        schema.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        schema.insert("title".into(), json!(format!("{name} ({direction})")));
        let body = Value::Object(v);
        let used = used_defs(&body, defs);
        schema.extend(body.as_object().expect("object").clone());
        if !used.is_empty() {
            schema.insert("$defs".into(), Value::Object(used));
        }
        out.push((name, Value::Object(schema)));
    }
    out
}

/// The definitions `body` refers to, directly or through other definitions.
fn used_defs(
    body: &serde_json::Value,
    defs: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, val) in m {
                    match (k.as_str(), val) {
                        ("$ref", serde_json::Value::String(r)) => {
                            if let Some(d) = r.strip_prefix("#/$defs/") {
                                out.push(d.to_owned());
                            }
                        }
                        _ => refs(val, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    refs(body, &mut todo);
    let mut used = serde_json::Map::new();
    while let Some(d) = todo.pop() {
        if used.contains_key(&d) {
            continue;
        }
        let def = defs.get(&d).unwrap_or_else(|| panic!("undefined $ref {d}"));
        refs(def, &mut todo);
        used.insert(d, def.clone());
    }
    used
}

/// `v` with every object's keys sorted, so the files do not depend on
/// serde_json's `preserve_order` feature.
fn canonical(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(canonical).collect())
        }
        v => v,
    }
}
