//! Local fakes of the services loopsmith talks to, each a real HTTP server on loopback that
//! speaks the service's documented wire format (see `shared/reference/`). Tests start one,
//! point loopsmith's configured base URL at it, script its answers and read back what it was
//! sent. Nothing here is linked into the product.

pub mod discord;
pub mod fal;
pub mod telegram;

use std::net::SocketAddr;

use tokio::task::JoinHandle;

/// A fake server running on `127.0.0.1:<port>`; dropping it stops the server.
#[derive(Debug)]
pub struct Running {
    /// Where the server listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on an ephemeral loopback port until the returned handle is dropped.
pub async fn serve(router: axum::Router) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // An accept error ends the fake; the test using it then fails on its next request.
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running { addr, task })
}
