//! Fetching a result file safely: it comes from a URL fal's answer names, so the URL is
//! treated as untrusted. https only (plain http only for loopback hosts the operator listed),
//! hosts on an allow-list, redirects followed by hand and checked the same way, a byte cap
//! counted while streaming, a stall timeout and an overall one, then a content-type and
//! magic-byte check. No key is ever sent: fal's media URLs are public.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};

/// Redirect hops followed at most.
const MAX_REDIRECTS: usize = 5;

/// What may be downloaded and how long it may take.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadPolicy {
    /// Hosts results may come from. A listed name also allows its subdomains
    /// (`fal.media` allows `v3b.fal.media`); a listed loopback host may use plain http.
    pub hosts: Vec<String>,
    pub max_bytes: u64,
    /// Longest time without a byte arriving.
    pub stall_timeout: Duration,
    /// Longest time for the whole download.
    pub total_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("its address is not a URL")]
    BadUrl,
    #[error("it is on {host}, which is not an allowed media host")]
    HostNotAllowed { host: String },
    #[error("it is not offered over https")]
    NotHttps,
    #[error("a redirect pointed to {host}, which is not an allowed media host")]
    RedirectNotAllowed { host: String },
    #[error("it redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects,
    #[error("the media host answered {status}")]
    Status {
        status: u16,
        /// Its `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error("it is larger than the {} MiB limit", .limit / (1024 * 1024))]
    TooLarge { limit: u64 },
    #[error("it is `{0}`, not a video")]
    ContentType(String),
    #[error("it is not an MP4 video")]
    NotMp4,
    #[error("no data arrived for {} s", .0.as_secs_f32())]
    Stalled(Duration),
    #[error("it took longer than the {} s allowed", .0.as_secs_f32())]
    TooSlow(Duration),
    #[error("the connection failed")]
    Transport(#[source] reqwest::Error),
}

impl DownloadError {
    /// Whether fetching the same URL again may work: the file is already paid for, so a
    /// passing fault must not lose it. `Some(wait)` carries the server's `Retry-After`.
    pub fn transient(&self) -> Option<Option<Duration>> {
        match self {
            DownloadError::Status {
                status,
                retry_after,
            } if *status == 429 || *status >= 500 => Some(*retry_after),
            DownloadError::Transport(_) | DownloadError::Stalled(_) => Some(None),
            _ => None,
        }
    }
}

impl DownloadPolicy {
    /// Checks one URL against the rules; the host in the error is what the URL said.
    pub fn check(&self, url: &Url) -> Result<(), DownloadError> {
        let host = url
            .host_str()
            .ok_or(DownloadError::BadUrl)?
            .to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let listed = self.hosts.iter().any(|allowed| {
            let allowed = allowed.trim().to_ascii_lowercase();
            host == allowed || host.ends_with(&format!(".{allowed}"))
        });
        if !listed {
            return Err(DownloadError::HostNotAllowed { host });
        }
        match url.scheme() {
            "https" => Ok(()),
            "http" if is_loopback(&host) => Ok(()),
            _ => Err(DownloadError::NotHttps),
        }
    }

    /// Downloads `url` within the policy and checks that it is an MP4.
    pub async fn fetch(&self, http: &reqwest::Client, url: &str) -> Result<Vec<u8>, DownloadError> {
        let work = self.fetch_unbounded(http, url);
        match tokio::time::timeout(self.total_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(DownloadError::TooSlow(self.total_timeout)),
        }
    }

    async fn fetch_unbounded(
        &self,
        http: &reqwest::Client,
        url: &str,
    ) -> Result<Vec<u8>, DownloadError> {
        let mut url = Url::parse(url).map_err(|_| DownloadError::BadUrl)?;
        self.check(&url)?;
        let mut hops = 0;
        let response = loop {
            let response = self
                .stalling(http.get(url.clone()).send())
                .await?
                .map_err(DownloadError::Transport)?;
            if !response.status().is_redirection() {
                break response;
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(DownloadError::TooManyRedirects);
            }
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|location| url.join(location).ok())
                .ok_or(DownloadError::BadUrl)?;
            self.check(&next).map_err(|e| match e {
                DownloadError::HostNotAllowed { host } => {
                    DownloadError::RedirectNotAllowed { host }
                }
                other => other,
            })?;
            url = next;
        };
        if response.status() != StatusCode::OK {
            return Err(DownloadError::Status {
                status: response.status().as_u16(),
                retry_after: super::retry::retry_after(response.headers()),
            });
        }
        if let Some(kind) = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            let essence = kind
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            // CDNs label files loosely; octet-stream is allowed and the magic bytes decide.
            let fine = matches!(
                essence.as_str(),
                "video/mp4"
                    | "application/mp4"
                    | "application/octet-stream"
                    | "binary/octet-stream"
            );
            if !fine {
                return Err(DownloadError::ContentType(
                    essence.chars().take(60).collect(),
                ));
            }
        }
        if response
            .content_length()
            .is_some_and(|declared| declared > self.max_bytes)
        {
            return Err(DownloadError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = self.stalling(stream.next()).await? {
            let chunk = chunk.map_err(DownloadError::Transport)?;
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                // Counted as it arrives: a lying or missing Content-Length does not help.
                return Err(DownloadError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if body.len() < 8 || &body[4..8] != b"ftyp" {
            return Err(DownloadError::NotMp4);
        }
        Ok(body)
    }

    async fn stalling<F: Future>(&self, step: F) -> Result<F::Output, DownloadError> {
        tokio::time::timeout(self.stall_timeout, step)
            .await
            .map_err(|_| DownloadError::Stalled(self.stall_timeout))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> DownloadPolicy {
        DownloadPolicy {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            max_bytes: 1024,
            stall_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(1),
        }
    }

    fn check(p: &DownloadPolicy, url: &str) -> Result<(), String> {
        p.check(&Url::parse(url).expect("url"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn only_listed_hosts_over_https_or_listed_loopback_over_http() {
        let p = policy(&["v3.fal.media", "fal.media", "127.0.0.1"]);
        assert_eq!(check(&p, "https://v3.fal.media/files/a.mp4"), Ok(()));
        assert_eq!(
            check(&p, "https://v3b.fal.media/files/a.mp4"),
            Ok(()),
            "subdomain of fal.media"
        );
        assert_eq!(check(&p, "http://127.0.0.1:9000/a.mp4"), Ok(()));
        assert_eq!(
            check(&p, "http://v3.fal.media/files/a.mp4"),
            Err("it is not offered over https".into())
        );
        assert_eq!(
            check(&p, "https://evilfal.media/a.mp4"),
            Err("it is on evilfal.media, which is not an allowed media host".into()),
            "a suffix is not a subdomain"
        );
        assert_eq!(
            check(&p, "https://fal.media.evil.com/a.mp4"),
            Err("it is on fal.media.evil.com, which is not an allowed media host".into())
        );
        assert_eq!(
            check(&p, "http://[::1]:80/a.mp4"),
            Err("it is on ::1, which is not an allowed media host".into()),
            "loopback must be listed too"
        );
        assert!(check(&p, "file:///etc/passwd").is_err());
        assert!(check(&policy(&["v3.fal.media"]), "http://127.0.0.1/a.mp4").is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_url_outside_the_list_passes(host in "[a-z0-9.-]{1,30}", scheme in "(https|http|ftp)") {
            let p = policy(&["v3.fal.media"]);
            if let Ok(url) = Url::parse(&format!("{scheme}://{host}/a.mp4")) {
                let ok = p.check(&url).is_ok();
                let h = url.host_str().unwrap_or("").to_string();
                proptest::prop_assert_eq!(
                    ok,
                    scheme == "https" && (h == "v3.fal.media" || h.ends_with(".v3.fal.media"))
                );
            }
        }
    }
}
