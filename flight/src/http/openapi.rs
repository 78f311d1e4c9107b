//! Routes as declared once (method, path, handler and what the OpenAPI operation says), and
//! the OpenAPI 3.1 document built from them.

use axum::{
    handler::Handler,
    http::Method,
    routing::{MethodFilter, MethodRouter, on},
};
use serde_json::{Map, Value, json};

use super::AppState;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum In {
    Path,
    Query,
}

#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub name: &'static str,
    pub location: In,
    pub required: bool,
    pub description: &'static str,
    pub schema: Value,
    /// A value the document check of the tests sends.
    pub example: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Content {
    pub media_type: &'static str,
    pub schema: Value,
    pub example: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub description: &'static str,
    pub content: Vec<Content>,
}

/// One operation: its handler and its documentation, which cannot part.
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    /// Served without credentials.
    pub public: bool,
    pub params: Vec<Param>,
    pub body: Vec<Content>,
    pub replies: Vec<Reply>,
    pub handler: MethodRouter<AppState>,
}

/// A reference to a schema of the components.
pub(crate) fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

impl Route {
    fn new<H, T>(method: Method, filter: MethodFilter, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Route {
            method,
            path,
            id: "",
            tag: "",
            summary: "",
            description: "",
            public: false,
            params: Vec::new(),
            body: Vec::new(),
            replies: Vec::new(),
            handler: on(filter, handler),
        }
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Route::new(Method::GET, MethodFilter::GET, path, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Route::new(Method::POST, MethodFilter::POST, path, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Route::new(Method::DELETE, MethodFilter::DELETE, path, handler)
    }

    pub fn op(mut self, id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        self.id = id;
        self.tag = tag;
        self.summary = summary;
        self
    }

    pub fn describe(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    pub fn path_param(
        mut self,
        name: &'static str,
        description: &'static str,
        example: Value,
    ) -> Self {
        let kind = if example.is_i64() {
            "integer"
        } else {
            "string"
        };
        self.params.push(Param {
            name,
            location: In::Path,
            required: true,
            description,
            schema: json!({ "type": kind }),
            example: Some(example),
        });
        self
    }

    pub fn query(mut self, name: &'static str, description: &'static str, schema: Value) -> Self {
        self.params.push(Param {
            name,
            location: In::Query,
            required: false,
            description,
            schema,
            example: None,
        });
        self
    }

    pub fn body(mut self, media_type: &'static str, schema: Value, example: Option<Value>) -> Self {
        self.body.push(Content {
            media_type,
            schema,
            example,
        });
        self
    }

    /// A successful reply; `content` is (media type, schema) pairs.
    pub fn reply(
        mut self,
        status: u16,
        description: &'static str,
        content: &[(&'static str, Value)],
    ) -> Self {
        self.replies.push(Reply {
            status,
            description,
            content: content
                .iter()
                .map(|(media_type, schema)| Content {
                    media_type,
                    schema: schema.clone(),
                    example: None,
                })
                .collect(),
        });
        self
    }

    /// Error replies, each with the JSON error body.
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        for status in statuses {
            self.replies.push(Reply {
                status: *status,
                description: error_description(*status),
                content: vec![Content {
                    media_type: "application/json",
                    schema: schema("Error"),
                    example: None,
                }],
            });
        }
        self
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "The request is malformed (bad SQL, a missing field, an unknown parameter).",
        401 => "No credentials, or credentials that are not valid.",
        403 => "The caller may not do this.",
        404 => "What the path names does not exist.",
        409 => "Another change got there first.",
        413 => "The request body is over the server's limit.",
        422 => "The body is well formed but cannot be used.",
        429 => "The query went over its memory or time limit.",
        503 => "The server is overloaded or a dependency is unreachable.",
        _ => "The request failed.",
    }
}

/// The OpenAPI 3.1 document of `routes`.
pub(crate) fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(route.id));
        operation.insert("tags".into(), json!([route.tag]));
        operation.insert("summary".into(), json!(route.summary));
        if !route.description.is_empty() {
            operation.insert("description".into(), json!(route.description));
        }
        if route.public {
            operation.insert("security".into(), json!([]));
        }
        if !route.params.is_empty() {
            let params: Vec<Value> = route
                .params
                .iter()
                .map(|p| {
                    let mut param = json!({
                        "name": p.name,
                        "in": match p.location { In::Path => "path", In::Query => "query" },
                        "required": p.required,
                        "description": p.description,
                        "schema": p.schema,
                    });
                    if let Some(example) = &p.example {
                        param["example"] = example.clone();
                    }
                    param
                })
                .collect();
            operation.insert("parameters".into(), Value::Array(params));
        }
        if !route.body.is_empty() {
            operation.insert(
                "requestBody".into(),
                json!({ "required": true, "content": content(&route.body) }),
            );
        }
        let mut replies = Map::new();
        let mut all = route.replies.clone();
        if !route.public {
            all.push(Reply {
                status: 401,
                description: error_description(401),
                content: vec![Content {
                    media_type: "application/json",
                    schema: schema("Error"),
                    example: None,
                }],
            });
        }
        for reply in &all {
            let mut value = json!({ "description": reply.description });
            if !reply.content.is_empty() {
                value["content"] = content(&reply.content);
            }
            replies.insert(reply.status.to_string(), value);
        }
        operation.insert("responses".into(), Value::Object(replies));
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[route.method.as_str().to_ascii_lowercase()] = Value::Object(operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "HealthAI API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "SQL over health streams, writes with cleaning and quality reports, \
                subjects, goals and GDPR export and erasure. Authenticate with a token from \
                /api/v1/auth/login (`Authorization: Bearer …`), Basic credentials, or \
                `Authorization: Token …` as InfluxDB clients send it. Errors are \
                `{\"error\": {\"code\", \"message\", \"request_id\"}}`.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "basic": [] }, { "token": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                "basic": { "type": "http", "scheme": "basic" },
                "token": {
                    "type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "`Token ACCESS_TOKEN`, as InfluxDB clients send it",
                },
            },
            "schemas": super::api::schemas(),
        },
    })
}

fn content(contents: &[Content]) -> Value {
    let mut map = Map::new();
    for c in contents {
        let mut media = json!({ "schema": c.schema });
        if let Some(example) = &c.example {
            media["example"] = example.clone();
        }
        map.insert(c.media_type.into(), media);
    }
    Value::Object(map)
}
