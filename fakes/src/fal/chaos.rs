//! Random fault injection: a share of requests on chosen routes is answered with a fault
//! drawn from every kind fal's queue API and media host produce, instead of (or, for a lost
//! answer, after) the normal answer. Deterministic for a seed, so a failing run replays.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use super::Route;
use super::wire::json_response;

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// 429 with `Retry-After` in whole seconds.
    RateLimited { retry_after_secs: u64 },
    /// 500, 502, 503 or 504 (not the start-timeout kind): fal does not bill these.
    ServerError(u16),
    /// The request is handled as normal (a submit is accepted, and paid for), but the
    /// connection breaks half-way through the answer.
    AnswerLost,
    /// The connection breaks before anything is handled.
    Dropped,
    /// 200 with a body that is not the documented JSON.
    Garbled,
    /// 422 with a validation `detail`, as for an input the model refuses.
    Unprocessable,
}

impl Injected {
    /// Whether the normal answer is worked out (and its effects happen) before the fault.
    pub fn handled_first(self) -> bool {
        self == Injected::AnswerLost
    }

    /// Whether a careful client may send the same request again after this fault.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Injected::RateLimited { .. } | Injected::ServerError(_) | Injected::Dropped
        )
    }

    pub(super) fn response(self, route: Route) -> Response {
        match self {
            Injected::RateLimited { retry_after_secs } => json_response(
                429,
                json!({"detail": "Too many requests"}),
                &[("retry-after".into(), retry_after_secs.to_string())],
            ),
            Injected::ServerError(status) => json_response(
                status,
                json!({"detail": "Internal server error", "error_type": "internal_server_error"}),
                &[],
            ),
            Injected::AnswerLost | Injected::Dropped => broken_answer(route),
            Injected::Garbled => {
                let mut response = Response::new(Body::from("<html>502 Bad Gateway"));
                *response.status_mut() = StatusCode::OK;
                response
            }
            Injected::Unprocessable => json_response(
                422,
                json!({"detail": [{"loc": ["body", "prompt"], "msg": "rejected", "type": "value_error"}]}),
                &[],
            ),
        }
    }
}

/// Headers, a first chunk, then an error: hyper aborts the connection mid-body, which the
/// client sees as a transport error after the request was sent.
fn broken_answer(route: Route) -> Response {
    let first = if route == Route::Media {
        Bytes::from_static(b"\0\0\0\x20ftypisom")
    } else {
        Bytes::from_static(b"{\"status\": \"IN_")
    };
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(first),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injected by the fake",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    *response.status_mut() = StatusCode::OK;
    response
}

/// Which requests get faults, and how often.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// Share of requests on `routes` answered with a fault, 0.0 to 1.0.
    pub rate: f64,
    pub routes: Vec<Route>,
    /// Faults drawn from, with equal odds. Kinds that cannot happen on a route (a lost
    /// answer on a download is just a dropped connection) are still drawn there.
    pub kinds: Vec<Injected>,
    pub seed: u64,
}

impl Chaos {
    /// Every kind, on every route a render walks through.
    pub fn everything(rate: f64, seed: u64) -> Chaos {
        Chaos {
            rate,
            routes: vec![
                Route::Submit,
                Route::Status,
                Route::StatusStream,
                Route::Result,
                Route::Media,
                Route::UploadInitiate,
                Route::Upload,
            ],
            kinds: vec![
                Injected::RateLimited {
                    retry_after_secs: 1,
                },
                Injected::RateLimited {
                    retry_after_secs: 2,
                },
                Injected::ServerError(500),
                Injected::ServerError(502),
                Injected::ServerError(503),
                Injected::ServerError(504),
                Injected::AnswerLost,
                Injected::Dropped,
                Injected::Garbled,
                Injected::Unprocessable,
            ],
            seed,
        }
    }
}

/// The running draw.
#[derive(Debug)]
pub(super) struct Dice {
    chaos: Chaos,
    state: u64,
}

impl Dice {
    pub(super) fn new(chaos: Chaos) -> Dice {
        let state = chaos.seed.max(1);
        Dice { chaos, state }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: enough for spreading faults, and reproducible.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The fault for this request, if it gets one.
    pub(super) fn roll(&mut self, route: Route) -> Option<Injected> {
        if !self.chaos.routes.contains(&route) || self.chaos.kinds.is_empty() {
            return None;
        }
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= self.chaos.rate {
            return None;
        }
        let pick = (self.next() % self.chaos.kinds.len() as u64) as usize;
        Some(self.chaos.kinds[pick])
    }
}
