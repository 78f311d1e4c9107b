//! Login, refresh and logout: the same users and tokens as the gRPC AuthService.

use axum::{
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{AppState, INTERFACE, json, json_body};
use crate::{Result, Tokens};

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

#[derive(Serialize)]
struct TokenReply {
    #[serde(flatten)]
    tokens: Tokens,
    token_type: &'static str,
}

fn reply(tokens: Tokens) -> Result<Response> {
    json(
        StatusCode::OK,
        &TokenReply {
            tokens,
            token_type: "Bearer",
        },
    )
}

pub(crate) async fn login(State(state): State<AppState>, body: Bytes) -> Result<Response> {
    let request: Login = json_body(&body, "login (username, password)")?;
    let (_, tokens) = state
        .auth
        .login(&request.username, &request.password, INTERFACE)
        .await?;
    reply(tokens)
}

pub(crate) async fn refresh(State(state): State<AppState>, body: Bytes) -> Result<Response> {
    let request: Refresh = json_body(&body, "refresh request (refresh_token)")?;
    reply(state.auth.refresh(&request.refresh_token).await?)
}

pub(crate) async fn logout(State(state): State<AppState>, body: Bytes) -> Result<Response> {
    let request: Refresh = json_body(&body, "logout request (refresh_token)")?;
    state.auth.logout(&request.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
