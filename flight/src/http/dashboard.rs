//! The dashboard: static files compiled into the binary (no CDN, no third-party code), so it
//! works with no internet. Its data comes from the REST API, queried as the logged-in user.

use axum::{
    extract::Path,
    http::header,
    response::{IntoResponse, Response},
};

use crate::{Error, Result};

/// The page, with its scripts and style under `/dashboard/`.
const INDEX: &str = include_str!("../../assets/dashboard/index.html");

/// The files under `/dashboard/`: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/api.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard/charts.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../assets/dashboard/favicon.svg"),
    ),
];

pub(crate) async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

pub(crate) async fn file(Path(name): Path<String>) -> Result<Response> {
    let (_, content_type, content) = FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or_else(|| Error::NotFound(format!("the dashboard has no file '{name}'")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *content,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_only_files_that_are_served() {
        for (attribute, start) in [("href=\"", 0), ("src=\"", 0)] {
            let mut rest = &INDEX[start..];
            while let Some(at) = rest.find(attribute) {
                rest = &rest[at + attribute.len()..];
                let link = &rest[..rest.find('"').unwrap()];
                if link.starts_with('#') {
                    continue;
                }
                let name = link
                    .strip_prefix("dashboard/")
                    .unwrap_or_else(|| panic!("{link} is not under dashboard/"));
                assert!(
                    FILES.iter().any(|(file, _, _)| *file == name),
                    "{link} is not served"
                );
            }
        }
    }
}
