//! Lua values and JSON, both ways: the mapping every Lua call uses (JSON
//! payloads, `funcs` between Lua and WASM). Integers and floats stay
//! distinct; a table whose keys are exactly 1..n is an array, any other
//! table an object.

use mlua::{Lua, Table, Value};
use serde_json::Value as Json;

/// How deep a table may nest (a cycle is refused long before).
const MAX_DEPTH: usize = 128;

/// JSON as a Lua value: `null` is `nil`, an object a table with string
/// keys, an array a sequence.
pub fn to_lua(lua: &Lua, v: &Json) -> mlua::Result<Value> {
    Ok(match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Json::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A Lua value as JSON; why not, if it has no JSON form (a function, a
/// cycle, a key that is neither a string nor a number).
pub fn from_lua(v: &Value) -> Result<Json, String> {
    convert(v, 0)
}

fn convert(v: &Value, depth: usize) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        return Err(format!("a table nested more than {MAX_DEPTH} deep (a cycle?)"));
    }
    Ok(match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Number(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.to_string_lossy()),
        Value::Table(t) => table(t, depth)?,
        other => return Err(format!("a {} has no JSON form", other.type_name())),
    })
}

fn table(t: &Table, depth: usize) -> Result<Json, String> {
    let err = |e: mlua::Error| e.to_string();
    let len = t.raw_len();
    let mut count = 0usize;
    let mut sequence = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(err)?;
        count += 1;
        sequence &= matches!(k, Value::Integer(i) if i >= 1 && i as usize <= len);
    }
    if sequence && count == len {
        let mut items = Vec::with_capacity(len);
        for i in 1..=len {
            items.push(convert(&t.raw_get::<Value>(i).map_err(err)?, depth + 1)?);
        }
        return Ok(Json::Array(items));
    }
    let mut map = serde_json::Map::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(err)?;
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(i) => i.to_string(),
            Value::Number(f) => f.to_string(),
            Value::Boolean(b) => b.to_string(),
            other => return Err(format!("a table key of type {} has no JSON form", other.type_name())),
        };
        map.insert(key, convert(&v, depth + 1)?);
    }
    Ok(Json::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_and_tables_split_into_arrays_and_objects() {
        let lua = Lua::new();
        for v in [
            json!(null),
            json!(3),
            json!(2.5),
            json!("x"),
            json!([1, "a", [true]]),
            json!({"k": {"n": 1}}),
        ] {
            assert_eq!(from_lua(&to_lua(&lua, &v).unwrap()).unwrap(), v);
        }
        let eval = |src: &str| from_lua(&lua.load(src).eval::<Value>().unwrap());
        assert_eq!(eval("return 3").unwrap(), json!(3));
        assert_eq!(eval("return 3.0").unwrap(), json!(3.0), "floats stay floats");
        assert_eq!(eval("return {}").unwrap(), json!([]));
        assert_eq!(eval("return {1, 2, 3}").unwrap(), json!([1, 2, 3]));
        assert_eq!(
            eval("return {[1] = 'a', [3] = 'c'}").unwrap(),
            json!({"1": "a", "3": "c"})
        );
        assert_eq!(eval("return {a = 1, 2}").unwrap(), json!({"1": 2, "a": 1}));
        assert!(eval("local t = {} t.t = t return t").unwrap_err().contains("nested"));
        assert!(eval("return {f = print}").unwrap_err().contains("function"));
    }
}
