//! Client side of the streaming sessions CRI `Exec`/`Attach` hand out as URLs, served by
//! containerd's streaming server: a websocket speaking Kubernetes' `v4.channel.k8s.io`
//! protocol, where the first byte of each binary message names the channel
//! (0 stdin, 1 stdout, 2 stderr, 3 error/status JSON, 4 terminal resize JSON).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{Result, TestbedError};

const PROTOCOL: &str = "v4.channel.k8s.io";
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const RESIZE: u8 = 4;

/// What a session produced so far.
#[derive(Clone, Debug, Default)]
pub struct StreamOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The final status (a Kubernetes `metav1.Status`), sent when the process ended.
    pub status: Option<serde_json::Value>,
}

impl StreamOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The process's exit code, from the final status (`Success` is 0).
    pub fn exit_code(&self) -> Option<i32> {
        exit_code_of(self.status.as_ref()?)
    }
}

/// Reads the exit code out of a `metav1.Status`: 0 for `Success`, else the `ExitCode` cause.
pub fn exit_code_of(status: &serde_json::Value) -> Option<i32> {
    if status["status"] == "Success" {
        return Some(0);
    }
    status["details"]["causes"]
        .as_array()?
        .iter()
        .find(|cause| cause["reason"] == "ExitCode")?["message"]
        .as_str()?
        .parse()
        .ok()
}

/// One open exec/attach session.
pub struct StreamSession {
    url: String,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    output: StreamOutput,
    closed: bool,
}

impl StreamSession {
    /// Opens the session at `url` (the `http://` URL CRI returned).
    pub async fn connect(url: &str) -> Result<Self> {
        let ws_url = url
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let error = |reason: String| TestbedError::Stream {
            url: url.to_string(),
            reason,
        };
        let mut request = ws_url
            .into_client_request()
            .map_err(|e| error(e.to_string()))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
        let (socket, _response) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| error(format!("websocket handshake: {e}")))?;
        Ok(StreamSession {
            url: url.to_string(),
            socket,
            output: StreamOutput::default(),
            closed: false,
        })
    }

    fn error(&self, reason: impl Into<String>) -> TestbedError {
        TestbedError::Stream {
            url: self.url.clone(),
            reason: reason.into(),
        }
    }

    async fn send(&mut self, channel: u8, payload: &[u8]) -> Result<()> {
        let mut message = Vec::with_capacity(payload.len() + 1);
        message.push(channel);
        message.extend_from_slice(payload);
        let sent = self.socket.send(Message::Binary(message.into())).await;
        sent.map_err(|e| self.error(format!("send on channel {channel}: {e}")))
    }

    /// Writes to the process's stdin (the session must have been asked for with stdin).
    pub async fn write_stdin(&mut self, data: &[u8]) -> Result<()> {
        self.send(STDIN, data).await
    }

    /// Resizes the session's terminal.
    pub async fn resize(&mut self, width: u16, height: u16) -> Result<()> {
        let size = serde_json::json!({ "Width": width, "Height": height }).to_string();
        self.send(RESIZE, size.as_bytes()).await
    }

    /// What arrived so far.
    pub fn output(&self) -> &StreamOutput {
        &self.output
    }

    /// Whether the server closed the session (the process ended).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Reads messages until `done` holds for the output or the session closes; a timeout is
    /// an error naming what arrived.
    pub async fn read_until(
        &mut self,
        timeout: Duration,
        done: impl Fn(&StreamOutput) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.closed && !done(&self.output) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let next = match tokio::time::timeout(remaining, self.socket.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(self.error(format!(
                        "nothing more within {timeout:?}; stdout so far {:?}",
                        self.output.stdout_text()
                    )))
                }
            };
            match next {
                None | Some(Ok(Message::Close(_))) => self.closed = true,
                Some(Ok(Message::Binary(bytes))) => self.take(&bytes)?,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(self.error(format!("receive: {e}"))),
            }
        }
        Ok(())
    }

    fn take(&mut self, message: &[u8]) -> Result<()> {
        let Some((channel, payload)) = message.split_first() else {
            return Ok(());
        };
        match *channel {
            STDOUT => self.output.stdout.extend_from_slice(payload),
            STDERR => self.output.stderr.extend_from_slice(payload),
            // An empty message only announces the channel.
            STATUS if !payload.is_empty() => {
                let status = serde_json::from_slice(payload).map_err(|e| {
                    self.error(format!(
                        "bad status {:?}: {e}",
                        String::from_utf8_lossy(payload)
                    ))
                })?;
                self.output.status = Some(status);
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads until the session closes and returns everything it produced.
    pub async fn finish(mut self, timeout: Duration) -> Result<StreamOutput> {
        self.read_until(timeout, |_| false).await?;
        Ok(self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exit_codes_come_from_the_status() {
        assert_eq!(
            exit_code_of(&json!({"metadata": {}, "status": "Success"})),
            Some(0)
        );
        let failure = json!({
            "status": "Failure",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        });
        assert_eq!(exit_code_of(&failure), Some(3));
        assert_eq!(
            exit_code_of(&json!({"status": "Failure", "message": "oops"})),
            None
        );
    }
}
