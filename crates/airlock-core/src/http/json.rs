//! JSON bodies with an exact content type: snapd compares some content types literally.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A `200 OK` JSON body, `application/json`.
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, "application/json", &self.0)
    }
}

/// `value` as compact JSON, with this status and content type.
pub fn json_response<T: Serialize>(
    status: StatusCode,
    content_type: &'static str,
    value: &T,
) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        // Only maps with keys that are not strings fail, and no body here has one.
        Err(e) => {
            tracing::error!("cannot render a JSON body: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render the answer\n",
            )
                .into_response()
        }
    }
}
