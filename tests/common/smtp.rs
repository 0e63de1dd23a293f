//! A real SMTP server on loopback for the e-mail alert tests: PyPI's `aiosmtpd`
//! (tests/requirements.txt, run with `MESHER_TEST_PYTHON`) under a small script that prints
//! each message it accepts as one JSON line, parsed by Python's `email` package (so a
//! quoted-printable or base64 body is read as its text). A child process, stopped by its
//! PID (SIGKILL) and startable again on the same port: a mail server that goes away and
//! comes back.

use super::WAIT;
use serde::Deserialize;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The server: `python -c SCRIPT PORT HANG SLOW_MS`. It prints `{"ready": PORT}` once it
/// listens, then one line per message. A `RCPT TO` naming `HANG` (unless empty) is never
/// answered (a recipient the server hangs on, while it serves every other connection):
/// `{"hung": HANG}` is printed instead. With `SLOW_MS` > 0, each message's data is taken
/// that long after `{"receiving": RECIPIENT}` is printed (a message in flight), then
/// printed and answered.
const SCRIPT: &str = r#"
import asyncio, email, email.policy, json, sys
from aiosmtpd.smtp import SMTP

PORT = int(sys.argv[1])
HANG = sys.argv[2]
SLOW = int(sys.argv[3]) / 1000

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if HANG and address == HANG:
            print(json.dumps({"hung": address}), flush=True)
            await asyncio.sleep(3600)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if SLOW > 0:
            print(json.dumps({"receiving": envelope.rcpt_tos[0]}), flush=True)
            await asyncio.sleep(SLOW)
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        print(json.dumps({
            "envelope_from": envelope.mail_from,
            "envelope_to": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "text": body.get_content().replace("\r\n", "\n") if body is not None else "",
        }), flush=True)
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    # A fixed hostname: the default asks the resolver for this machine's FQDN.
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname="smtp.test"), "127.0.0.1", PORT)
    print(json.dumps({"ready": PORT}), flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// One message as the SMTP server received it.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Mail {
    /// `MAIL FROM`.
    pub envelope_from: String,
    /// `RCPT TO`, each.
    pub envelope_to: Vec<String>,
    /// The headers, decoded.
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    /// The text/plain body, decoded, its line ends `\n`.
    pub text: String,
}

/// A running SMTP server.
pub(crate) struct Smtp {
    pub port: u16,
    child: Child,
    mails: mpsc::UnboundedReceiver<Mail>,
    /// Each time it began to hang on a recipient (`hung`) or to take a message slowly
    /// (`receiving`): the kind and the recipient.
    stalls: mpsc::UnboundedReceiver<(String, String)>,
}

impl Smtp {
    /// A server on a free loopback port.
    pub(crate) async fn start() -> Smtp {
        Smtp::on(super::process::free_port()).await
    }

    /// A server on `port` (e.g. where a stopped one was).
    pub(crate) async fn on(port: u16) -> Smtp {
        Smtp::spawn(port, None, Duration::ZERO).await
    }

    /// A server on a free port that never answers `RCPT TO:<hang>`.
    pub(crate) async fn hanging_on_recipient(hang: &str) -> Smtp {
        Smtp::spawn(super::process::free_port(), Some(hang), Duration::ZERO).await
    }

    /// A server on a free port that takes `slow` to accept each message's data.
    pub(crate) async fn slow(slow: Duration) -> Smtp {
        Smtp::spawn(super::process::free_port(), None, slow).await
    }

    async fn spawn(port: u16, hang: Option<&str>, slow: Duration) -> Smtp {
        let mut child = Command::new(super::sdk::python())
            .arg("-c")
            .arg(SCRIPT)
            .arg(port.to_string())
            .arg(hang.unwrap_or(""))
            .arg(slow.as_millis().to_string())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python with aiosmtpd starts (tests/requirements.txt, scripts/test.sh)");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the SMTP server starts within 10 s");
        match ready {
            Ok(Some(line)) if line.contains("\"ready\"") => {}
            other => panic!("the SMTP server did not start on port {port}: {other:?}"),
        }
        let (tx, mails) = mpsc::unbounded_channel();
        let (stall, stalls) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("the SMTP server printed {line:?}: {e}"));
                if let Some(kind) = ["hung", "receiving"].into_iter().find(|k| v[k].is_string()) {
                    let _ = stall.send((kind.to_owned(), v[kind].as_str().unwrap().to_owned()));
                    continue;
                }
                let mail: Mail = serde_json::from_value(v)
                    .unwrap_or_else(|e| panic!("the SMTP server printed {line:?}: {e}"));
                if tx.send(mail).is_err() {
                    return;
                }
            }
        });
        Smtp {
            port,
            child,
            mails,
            stalls,
        }
    }

    /// `smtp://127.0.0.1:<port>`, for `--smtp-url`.
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The server process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("the SMTP server runs")
    }

    /// The next message received, within `limit`; `None` when none came.
    pub(crate) async fn within(&mut self, limit: Duration) -> Option<Mail> {
        tokio::time::timeout(limit, self.mails.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next message received, within `limit`; panics when none came.
    pub(crate) async fn next_within(&mut self, limit: Duration) -> Mail {
        self.within(limit)
            .await
            .unwrap_or_else(|| panic!("no message within {limit:?}"))
    }

    /// Waits (within [`WAIT`]) until the server hangs on a recipient: a message is in
    /// flight, not yet accepted. Answers the recipient.
    pub(crate) async fn hanging(&mut self) -> String {
        self.stall("hung").await
    }

    /// Waits (within [`WAIT`]) until a slow server begins to take a message: it is in
    /// flight, not yet accepted. Answers its recipient.
    pub(crate) async fn receiving(&mut self) -> String {
        self.stall("receiving").await
    }

    async fn stall(&mut self, kind: &str) -> String {
        let (got, recipient) = tokio::time::timeout(WAIT, self.stalls.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the SMTP server is not {kind} within 10 s"));
        assert_eq!(got, kind, "the SMTP server is {got}, not {kind}");
        recipient
    }

    /// The next message received (within [`WAIT`]).
    pub(crate) async fn next(&mut self) -> Mail {
        self.next_within(WAIT).await
    }

    /// SIGKILLs the server (this child, by its PID) and waits for it to be gone: its
    /// port refuses connections afterwards.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("kill the SMTP server");
    }
}
