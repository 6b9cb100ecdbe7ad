//! Pull-through for a simplestreams feed (images.maas.io): what MAAS asks for under the
//! stream's route is fetched from the upstream, checked and stored, then served.
//!
//! Every document (`streams/v1/*.sjson`) must carry a signature the images keyring verifies;
//! it is passed on as signed, so MAAS keeps trusting the upstream's own key, and `.json`
//! asks get the verified text. A document is fetched again at most every [`FRESH`]. Image
//! files are fetched only when a verified products document lists their path, and are
//! checked against its size and SHA256 before anyone sees a byte.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::StatusCode;

use super::{FRESH, PullThrough, Refusal};
use crate::hint::Chain;
use crate::http::files::safe_segments;
use crate::net::{Expected, Url};
use crate::openpgp::Keyring;
use crate::simplestreams::document::{self, Index, Products};
use crate::simplestreams::mirror::{fetch_signed, parse};
use crate::storage::tree::check_relative_path;

/// One upstream stream as seen through one route.
pub(super) struct Stream {
    base: Url,
    keyring: Keyring,
    /// Verified documents by path without extension (`streams/v1/index`).
    documents: Mutex<HashMap<String, Arc<Document>>>,
    /// Documents that could not be had and never were, with when and why: asked upstream
    /// again only after FRESH, however many clients want them meanwhile.
    failed: Mutex<HashMap<String, (Instant, StatusCode, String)>>,
    /// One document fetch at a time; the others wait and take its result.
    refreshing: tokio::sync::Mutex<()>,
    /// Item paths the verified products documents list.
    items: Mutex<HashMap<String, Expected>>,
}

/// A verified document as stored: as signed, and its text.
#[derive(Clone)]
struct Document {
    signed: Expected,
    text: Expected,
    /// For the index: the products documents it lists (paths without extension), with
    /// their content ids.
    lists: Vec<(String, String)>,
    checked: Instant,
}

impl Stream {
    pub(super) fn new(base: Url, keyring: Keyring) -> Stream {
        Stream {
            base,
            keyring,
            documents: Mutex::default(),
            failed: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
            items: Mutex::default(),
        }
    }

    fn document(&self, stem: &str) -> Option<Arc<Document>> {
        self.documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stem)
            .cloned()
    }

    fn failure(&self, stem: &str) -> Option<(Instant, StatusCode, String)> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stem)
            .cloned()
    }

    fn forget(&self, stem: &str) {
        self.documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(stem);
    }

    fn item(&self, path: &str) -> Option<Expected> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .copied()
    }
}

impl PullThrough {
    /// The stored blob for `path` of a stream, fetched and verified first when needed.
    pub(super) async fn locate_in_stream(
        self: &Arc<Self>,
        stream: &Stream,
        path: &str,
    ) -> Result<Expected, Refusal> {
        let path = safe_segments(path)
            .ok_or_else(|| Refusal(StatusCode::BAD_REQUEST, "invalid path".into()))?
            .join("/");
        let path = path.as_str();
        if path.starts_with("streams/") {
            let (stem, signed) = match (path.strip_suffix(".sjson"), path.strip_suffix(".json")) {
                (Some(stem), _) => (stem, true),
                (_, Some(stem)) => (stem, false),
                _ => {
                    return Err(Refusal(
                        StatusCode::NOT_FOUND,
                        format!("{path}: only the stream's .sjson and .json documents are fetched"),
                    ));
                }
            };
            let content_id = if stem == document::INDEX_PATH {
                None
            } else {
                let index = self
                    .stream_document(stream, document::INDEX_PATH, None, false)
                    .await?;
                let listed = index.lists.iter().find(|(s, _)| *s == stem);
                Some(listed.map(|(_, id)| id.clone()).ok_or_else(|| {
                    Refusal(
                        StatusCode::NOT_FOUND,
                        format!("{path} is not listed in the index of {}", stream.base),
                    )
                })?)
            };
            let mut document = self
                .stream_document(stream, stem, content_id.as_deref(), true)
                .await?;
            // Removed by `airlock gc` (no tree names it): fetched and verified again.
            let gone = |d: &Document| {
                ![d.signed, d.text]
                    .iter()
                    .all(|e| self.store.contains(&e.sha256))
            };
            if gone(&document) {
                stream.forget(stem);
                document = self
                    .stream_document(stream, stem, content_id.as_deref(), true)
                    .await?;
            }
            return Ok(if signed {
                document.signed
            } else {
                document.text
            });
        }
        let expected = match stream.item(path) {
            Some(expected) => expected,
            None => {
                // Not learned yet (a restart, or MAAS read the documents before): read every
                // products document the index lists, then look again.
                let index = self
                    .stream_document(stream, document::INDEX_PATH, None, false)
                    .await?;
                // One document that fails keeps nobody from the others; a path none of those
                // read lists is a 502 while one failed (it may be there), a 404 otherwise.
                let mut failed = Vec::new();
                for (stem, content_id) in &index.lists {
                    if let Err(Refusal(_, why)) = self
                        .stream_document(stream, stem, Some(content_id), false)
                        .await
                    {
                        failed.push(why);
                    }
                }
                stream.item(path).ok_or_else(|| {
                    if failed.is_empty() {
                        Refusal(
                            StatusCode::NOT_FOUND,
                            format!(
                                "{path} is not listed in any products document of {}: only listed files are fetched",
                                stream.base
                            ),
                        )
                    } else {
                        Refusal(
                            StatusCode::BAD_GATEWAY,
                            format!(
                                "{path} is not listed in the products documents read; not read: {}",
                                failed.join("; ")
                            ),
                        )
                    }
                })?
            }
        };
        let url = under(&stream.base, path)?;
        self.obtain(expected, &url).await?;
        Ok(expected)
    }

    /// A verified document of the stream (`content_id` for a products document); with
    /// `fresh`, fetched again if older than FRESH. An upstream that fails keeps the last
    /// verified one served.
    async fn stream_document(
        &self,
        stream: &Stream,
        stem: &str,
        content_id: Option<&str>,
        fresh: bool,
    ) -> Result<Arc<Document>, Refusal> {
        let usable = |d: &Arc<Document>| !fresh || d.checked.elapsed() < FRESH;
        if let Some(document) = stream.document(stem).filter(usable) {
            return Ok(document);
        }
        let _one_at_a_time = stream.refreshing.lock().await;
        let previous = stream.document(stem);
        if let Some(document) = previous.clone().filter(usable) {
            return Ok(document);
        }
        if previous.is_none()
            && let Some((when, status, why)) = stream.failure(stem)
            && when.elapsed() < FRESH
        {
            return Err(Refusal(status, why));
        }
        let fetched = self.fetch_document(stream, stem, content_id).await;
        let document = match (fetched, previous) {
            (Ok(document), _) => Arc::new(document),
            (Err(Refusal(_, e)), Some(previous)) => {
                tracing::warn!("pull-through: {e}; serving the document verified before");
                Arc::new(Document {
                    checked: Instant::now(),
                    ..(*previous).clone()
                })
            }
            (Err(refusal), None) => {
                tracing::warn!("pull-through: {}", refusal.1);
                stream
                    .failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        stem.to_string(),
                        (Instant::now(), refusal.0, refusal.1.clone()),
                    );
                return Err(refusal);
            }
        };
        stream
            .documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stem.to_string(), document.clone());
        Ok(document)
    }

    async fn fetch_document(
        &self,
        stream: &Stream,
        stem: &str,
        content_id: Option<&str>,
    ) -> Result<Document, Refusal> {
        let bad_gateway = |e: String| Refusal(StatusCode::BAD_GATEWAY, e);
        let url = under(&stream.base, &format!("{stem}.sjson"))?;
        let (text, _, signed) = fetch_signed(&self.http, &stream.keyring, &url)
            .await
            .map_err(|e| bad_gateway(Chain(&e).to_string()))?;
        let mut lists = Vec::new();
        match content_id {
            None => {
                let index: Index =
                    parse(&text, &url).map_err(|e| bad_gateway(Chain(&e).to_string()))?;
                for (id, entry) in index.index {
                    // Listed as .sjson (images.maas.io's index.sjson) or .json.
                    let stem = entry
                        .path
                        .strip_suffix(".sjson")
                        .or(entry.path.strip_suffix(".json"));
                    match stem {
                        _ if entry.format != "products:1.0" => {}
                        Some(stem) if check_relative_path(stem).is_ok() => {
                            lists.push((stem.to_string(), id));
                        }
                        _ => tracing::warn!(
                            "pull-through: {url} lists {:?} for {id}: not a document path here",
                            entry.path
                        ),
                    }
                }
            }
            Some(content_id) => {
                let products: Products =
                    parse(&text, &url).map_err(|e| bad_gateway(Chain(&e).to_string()))?;
                if products.content_id != content_id {
                    return Err(bad_gateway(format!(
                        "{url}: content_id {:?}, but the index lists it as {content_id:?}",
                        products.content_id
                    )));
                }
                let items = products
                    .checked_items()
                    .map_err(|e| bad_gateway(format!("{url}: {e}")))?;
                stream
                    .items
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(items.into_iter().map(|(item, sha256)| {
                        let size = item.size;
                        (item.path.clone(), Expected { size, sha256 })
                    }));
            }
        }
        Ok(Document {
            signed: self.store_bytes(signed).await?,
            text: self.store_bytes(text.into()).await?,
            lists,
            checked: Instant::now(),
        })
    }
}

/// `path` under `base` and never elsewhere: a relative path may still carry a scheme
/// (`https:host/x` joins to another host) or an authority (`//host/x`).
fn under(base: &Url, path: &str) -> Result<Url, Refusal> {
    let refused = |why: String| Refusal(StatusCode::BAD_REQUEST, format!("{path}: {why}"));
    let url = base.join(path).map_err(|e| refused(e.to_string()))?;
    if !url.as_str().starts_with(base.as_str()) {
        return Err(refused(format!("leads outside {base}")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_stream() {
        let base = Url::parse("http://images.maas.io/ephemeral-v3/stable/").unwrap();
        assert_eq!(
            under(&base, "streams/v1/index.sjson").unwrap().as_str(),
            "http://images.maas.io/ephemeral-v3/stable/streams/v1/index.sjson"
        );
        for path in [
            "https:evil.example/x",
            "//evil.example/x",
            "/x",
            "../x",
            "http://evil/x",
        ] {
            assert!(under(&base, path).is_err(), "{path}");
        }
    }
}
