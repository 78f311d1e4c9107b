//! Reading a connector's JSON configuration key by key, so that every refusal names the key
//! (`config key fields.bpm: …`) and unknown keys, often misspellings, are refused too.

use std::fmt;

use serde_json::{Map, Value};

/// A configuration key with a problem.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.problem)
        } else {
            write!(f, "config key {}: {}", self.key, self.problem)
        }
    }
}

/// The keys of a configuration object.
pub(crate) struct Keys<'a> {
    map: &'a Map<String, Value>,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Keys<'a> {
    /// The configuration of a kind, refusing keys not in `known`.
    pub(crate) fn new(config: &'a Value, kind: &str, known: &[&str]) -> Result<Self, ConfigError> {
        let Some(map) = config.as_object() else {
            return Err(ConfigError::new(
                "",
                format!("must be a JSON object, not {}", type_name(config)),
            ));
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ConfigError::new(
                unknown,
                format!("is not a key of {kind}; its keys are {}", known.join(", ")),
            ));
        }
        Ok(Keys { map })
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong(key: &str, expected: &str, value: &Value) -> ConfigError {
        ConfigError::new(key, format!("must be {expected}, not {}", type_name(value)))
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(ConfigError::new(key, "must not be empty"))
            }
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Self::wrong(key, "a string", other)),
        }
    }

    pub(crate) fn required_string(&self, key: &str) -> Result<&'a str, ConfigError> {
        self.string(key)?
            .ok_or_else(|| ConfigError::new(key, "is required"))
    }

    pub(crate) fn number(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(Self::wrong(key, "a number", other)),
        }
    }

    pub(crate) fn integer(
        &self,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ConfigError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
                _ => Err(ConfigError::new(
                    key,
                    format!("must be a whole number from {min} to {max}, not {n}"),
                )),
            },
            Some(other) => Err(Self::wrong(key, "a whole number", other)),
        }
    }

    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Self::wrong(key, "true or false", other)),
        }
    }

    pub(crate) fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, ConfigError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(Self::wrong(key, "an object", other)),
        }
    }

    pub(crate) fn array(&self, key: &str) -> Result<Option<&'a [Value]>, ConfigError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(Self::wrong(key, "an array", other)),
        }
    }

    /// A JSON pointer (RFC 6901): empty for the whole document, else starting with `/`.
    pub(crate) fn pointer(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) => check_pointer(key, s).map(|()| Some(s.as_str())),
            Some(other) => Err(Self::wrong(key, "a JSON pointer such as \"/data\"", other)),
        }
    }
}

pub(crate) fn check_pointer(key: &str, pointer: &str) -> Result<(), ConfigError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("\"{pointer}\" is not a JSON pointer: it starts with / (\"/{pointer}\")"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn problems_name_the_key() {
        let config = json!({"url": 3, "mistyped": 1});
        let err = Keys::new(&config, "json_api", &["url"]).err().unwrap();
        assert_eq!(err.key, "mistyped");
        assert!(err.to_string().contains("its keys are url"), "{err}");

        let config = json!({"url": 3, "pages": 1.5, "items": "data"});
        let keys = Keys::new(&config, "json_api", &["url", "pages", "items"]).unwrap();
        assert_eq!(
            keys.string("url").unwrap_err().to_string(),
            "config key url: must be a string, not a number"
        );
        assert!(
            keys.integer("pages", 1, 10)
                .unwrap_err()
                .to_string()
                .contains("1.5")
        );
        assert!(
            keys.pointer("items")
                .unwrap_err()
                .to_string()
                .contains("\"/data\"")
        );
        assert_eq!(keys.string("absent"), Ok(None));
        assert_eq!(
            keys.required_string("absent").unwrap_err().to_string(),
            "config key absent: is required"
        );
        assert!(Keys::new(&json!([1]), "json_api", &[]).is_err());
    }
}
