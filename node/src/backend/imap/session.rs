//! One IMAP session: drives imap-next's sans-I/O server state machine
//! (which frames commands, literals, AUTHENTICATE and IDLE) over the seam's
//! connection, and dispatches each command by state (RFC 3501 section 3).

use std::net::SocketAddr;
use std::sync::Arc;

use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Atom, IString, NString, Tag, Text, Vec1};
use imap_codec::imap_types::response::{
    Bye, Capability, Code, CodeOther, CommandContinuationRequest, Data, Status, StatusBody, StatusKind, Tagged,
};
use imap_next::server::{Event, Options, Server};
use imap_next::types::CommandAuthenticate;
use imap_next::{Interrupt, Io, State};
use tracing::{debug, info, warn};

use super::selected::Selected;
use crate::backend::{Context, SessionSlot};
use crate::connection::{Connection, ReadError};
use crate::directory::{AUTH_FAILURE_DELAY, AuthOutcome};
use crate::sasl;
use crate::store::AccountId;

/// After this many BAD commands the client is dropped.
const MAX_ERRORS: u32 = 20;

pub struct Session {
    pub(super) ctx: Arc<Context>,
    conn: Connection,
    server: Server,
    pub(super) account: Option<AccountId>,
    pub(super) selected: Option<Selected>,
    /// The tag of the IDLE command in progress.
    idling: Option<Tag<'static>>,
    /// The tag of the AUTHENTICATE exchange in progress.
    authenticating: Option<Tag<'static>>,
    errors: u32,
    /// LOGOUT or BYE sent: end once the output is flushed.
    closing: bool,
    /// Held while logged in: counts against the per-account session limit.
    slot: Option<SessionSlot>,
}

/// `tag OK/NO/BAD [code] text`, for handlers' results. The text may carry
/// client bytes (a folder name in an error), so it is made valid IMAP text
/// (7-bit, no CR/LF) here rather than trusted: a panic would end the session.
pub fn status(tag: &Tag<'static>, kind: Kind, code: Option<Code<'static>>, text: &str) -> Status<'static> {
    let kind = match kind {
        Kind::Ok => StatusKind::Ok,
        Kind::No => StatusKind::No,
        Kind::Bad => StatusKind::Bad,
    };
    Status::Tagged(Tagged { tag: tag.clone(), body: StatusBody { kind, code, text: imap_text(text) } })
}

/// `text` as IMAP `text`: printable ASCII kept, anything else escaped
/// (`\u{e9}`), never empty.
pub fn imap_text(text: &str) -> Text<'static> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    Text::try_from(out).unwrap_or_else(|_| Text::try_from("-").expect("valid text"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    No,
    Bad,
}

/// A response code outside imap-types' list (RFC 5530 and friends).
pub fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}

/// What the server can do, before and after login.
pub fn capabilities(authenticated: bool) -> Vec1<Capability<'static>> {
    let mut caps = vec![Capability::Imap4Rev1, Capability::LiteralPlus, Capability::SaslIr];
    if !authenticated {
        caps.push(Capability::Auth(AuthMechanism::Plain));
    }
    caps.extend([
        Capability::Idle,
        Capability::Id,
        Capability::Namespace,
        Capability::UidPlus,
        Capability::Move,
        Capability::Enable,
        Capability::Unselect,
        Capability::from(Atom::try_from("SPECIAL-USE").expect("valid atom")),
        Capability::from(Atom::try_from("CHILDREN").expect("valid atom")),
    ]);
    Vec1::try_from(caps).expect("non-empty")
}

impl Session {
    pub fn new(ctx: Arc<Context>, conn: Connection) -> Self {
        let mut options = Options::default();
        let max = ctx.limits.max_message_size.min(u32::MAX as u64 - 65_536) as u32;
        options.max_literal_size = max;
        options.max_command_size = max + 65_536;
        options.crlf_relaxed = true;
        options.set_literal_reject_text(format!("Literal too large: the limit is {max} bytes")).expect("valid text");
        options.set_literal_accept_text("Ready for literal data".into()).expect("valid text");
        let greeting = imap_codec::imap_types::response::Greeting::ok(
            Some(Code::Capability(capabilities(false))),
            "tiermail IMAP ready",
        )
        .expect("valid greeting");
        Self {
            ctx,
            conn,
            server: Server::new(options, greeting),
            account: None,
            selected: None,
            idling: None,
            authenticating: None,
            errors: 0,
            closing: false,
            slot: None,
        }
    }

    /// Serves the client until LOGOUT, disconnect, timeout or shutdown.
    pub async fn run(mut self, _peer: SocketAddr) {
        if let Err(e) = self.drive().await {
            debug!(error = %e, "session ended");
        }
        self.conn.close().await;
    }

    async fn drive(&mut self) -> Result<(), ReadError> {
        loop {
            match self.server.next() {
                Ok(Event::CommandReceived { command }) => self.command(command).await,
                Ok(Event::CommandAuthenticateReceived { command_authenticate }) => {
                    self.authenticate_start(command_authenticate).await
                }
                Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                    self.authenticate_data(authenticate_data).await
                }
                Ok(Event::IdleCommandReceived { tag }) => self.idle_start(tag).await,
                Ok(Event::IdleDoneReceived) => self.idle_done(),
                Ok(Event::GreetingSent { .. } | Event::ResponseSent { .. }) => {}
                Err(Interrupt::Io(Io::Output(bytes))) => self.conn.write(&bytes).await?,
                Err(Interrupt::Io(Io::NeedMoreInput)) => {
                    if self.closing {
                        return self.conn.flush().await.map_err(ReadError::from);
                    }
                    self.read_input().await?;
                }
                Err(Interrupt::Error(e)) => self.protocol_error(e),
            }
        }
    }

    /// Waits for client bytes (or, while idling, for folder changes).
    async fn read_input(&mut self) -> Result<(), ReadError> {
        let between_commands = self.authenticating.is_none();
        let input = match (&self.idling, self.selected.as_mut()) {
            (Some(_), Some(selected)) => {
                let mut changes = selected.changes.clone();
                tokio::select! {
                    input = self.conn.read_chunk(between_commands) => input,
                    _ = changes.changed() => {
                        selected.changes.mark_unchanged();
                        self.push_updates(true).await;
                        return Ok(());
                    }
                }
            }
            _ => self.conn.read_chunk(between_commands).await,
        };
        match input {
            Ok(bytes) => {
                self.server.enqueue_input(&bytes);
                Ok(())
            }
            Err(ReadError::ShuttingDown) => {
                self.bye("Server shutting down, reconnect later");
                Ok(())
            }
            Err(ReadError::TimedOut) => {
                self.bye("Autologout; idle for too long");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn bye(&mut self, text: &str) {
        let bye = Status::Bye(Bye { code: None, text: imap_text(text) });
        self.server.enqueue_status(bye);
        self.closing = true;
    }

    fn protocol_error(&mut self, error: imap_next::server::Error) {
        use imap_next::server::Error;
        let (text, discarded) = match &error {
            Error::ExpectedCrlfGotLf { discarded_bytes } => ("Expected CRLF", discarded_bytes),
            Error::MalformedMessage { discarded_bytes } => {
                ("Error in IMAP command: unknown command or bad syntax", discarded_bytes)
            }
            Error::LiteralTooLong { discarded_bytes } => ("Literal too long", discarded_bytes),
            Error::CommandTooLong { discarded_bytes } => ("Command too long", discarded_bytes),
        };
        // imap-next answers a rejected synchronising literal itself.
        if !matches!(error, Error::LiteralTooLong { .. }) {
            let tag = tag_of(discarded.declassify());
            let status = Status::bad(tag, None, text.to_string()).expect("valid text");
            self.server.enqueue_status(status);
        }
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.bye("Too many errors");
        }
    }

    pub(super) fn enqueue_untagged_status(&mut self, status: Status<'static>) {
        self.server.enqueue_status(status);
    }

    pub(super) fn data(&mut self, data: Data<'static>) {
        self.server.enqueue_data(data);
    }

    /// Sends the selected folder's pending changes as untagged responses.
    pub(super) async fn push_updates(&mut self, allow_expunge: bool) {
        let (Some(account), Some(selected)) = (&self.account, &mut self.selected) else { return };
        match self.ctx.store.view(account, &selected.folder).await {
            Ok(snapshot) => {
                let recent = if selected.read_only {
                    Vec::new()
                } else {
                    self.ctx.store.claim_recent(account, &selected.folder).await.unwrap_or_default()
                };
                for data in selected.refresh(&snapshot, &recent, allow_expunge) {
                    self.server.enqueue_data(data);
                }
            }
            Err(e) => warn!(error = %e, "cannot refresh the selected folder"),
        }
    }

    async fn command(&mut self, command: Command<'static>) {
        let Command { tag, body } = command;
        let name = body.name();
        debug!(command = name, "command");
        let (status, allow_expunge) = match (self.account.is_some(), self.selected.is_some(), body) {
            (_, _, CommandBody::Capability) => {
                self.data(Data::Capability(capabilities(self.account.is_some())));
                (status(&tag, Kind::Ok, None, "CAPABILITY completed"), true)
            }
            (_, _, CommandBody::Noop) => (status(&tag, Kind::Ok, None, "NOOP completed"), true),
            (_, _, CommandBody::Logout) => {
                self.bye("Logging out");
                self.server.enqueue_status(status(&tag, Kind::Ok, None, "LOGOUT completed"));
                return;
            }
            (_, _, CommandBody::Id { parameters }) => (self.id(&tag, parameters), true),
            (false, _, CommandBody::Login { username, password }) => {
                match crate::sasl::login_credentials(username.as_ref(), password.declassify().as_ref()) {
                    Ok(c) => (self.login(&tag, &c.login, &c.password).await, true),
                    Err(e) => (status(&tag, Kind::Bad, None, &e.to_string()), true),
                }
            }
            (false, _, _) => (status(&tag, Kind::Bad, None, "Log in first"), true),
            (true, _, CommandBody::Login { .. }) => (status(&tag, Kind::Bad, None, "Already logged in"), true),
            (true, _, body) => {
                // RFC 3501 7.4.1: no EXPUNGE responses during FETCH, STORE or
                // SEARCH by sequence number, or numbers would shift under them.
                let allow_expunge = !matches!(
                    body,
                    CommandBody::Fetch { uid: false, .. }
                        | CommandBody::Store { uid: false, .. }
                        | CommandBody::Search { uid: false, .. }
                );
                (self.authenticated(&tag, body).await, allow_expunge)
            }
        };
        if is_bad(&status) {
            self.count_error();
        }
        self.push_updates(allow_expunge).await;
        self.server.enqueue_status(status);
    }

    async fn login(&mut self, tag: &Tag<'static>, login: &str, password: &str) -> Status<'static> {
        match self.ctx.authenticate(login, password).await {
            AuthOutcome::Accepted(account) => {
                let Some(slot) = self.ctx.claim_session(&account) else {
                    info!(%account, "session limit reached");
                    return status(tag, Kind::No, Some(code("LIMIT")), "Too many sessions for this user; close one");
                };
                tracing::Span::current().record("user", tracing::field::display(&account));
                info!("logged in");
                self.slot = Some(slot);
                self.account = Some(account);
                status(tag, Kind::Ok, Some(Code::Capability(capabilities(true))), "Logged in")
            }
            AuthOutcome::Rejected => {
                info!(%login, "authentication failed");
                tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                self.count_error();
                status(tag, Kind::No, Some(code("AUTHENTICATIONFAILED")), "Authentication failed")
            }
            AuthOutcome::Unavailable => {
                status(tag, Kind::No, Some(code("UNAVAILABLE")), "Directory unavailable, try again later")
            }
            AuthOutcome::NotHere => {
                status(tag, Kind::No, Some(code("UNAVAILABLE")), "Your mailbox is not on this server; try again later")
            }
        }
    }

    async fn authenticate_start(&mut self, command: CommandAuthenticate) {
        let CommandAuthenticate { tag, mechanism, initial_response } = command;
        if self.account.is_some() {
            let _ = self.server.authenticate_finish(status(&tag, Kind::Bad, None, "Already logged in"));
            return;
        }
        if mechanism != AuthMechanism::Plain {
            let _ = self.server.authenticate_finish(status(&tag, Kind::No, None, "Unsupported mechanism"));
            return;
        }
        match initial_response {
            Some(response) => self.authenticate_finish(tag, response.declassify().to_vec()).await,
            None => {
                self.authenticating = Some(tag);
                let _ = self.server.authenticate_continue(CommandContinuationRequest::base64(Vec::new()));
            }
        }
    }

    async fn authenticate_data(&mut self, data: AuthenticateData<'static>) {
        let Some(tag) = self.authenticating.take() else { return };
        match data {
            AuthenticateData::Continue(response) => self.authenticate_finish(tag, response.declassify().to_vec()).await,
            AuthenticateData::Cancel => {
                let _ = self.server.authenticate_finish(status(&tag, Kind::Bad, None, "Authentication cancelled"));
            }
        }
    }

    async fn authenticate_finish(&mut self, tag: Tag<'static>, response: Vec<u8>) {
        let result = match sasl::plain(&response) {
            Ok(credentials) => self.login(&tag, &credentials.login, &credentials.password).await,
            Err(e) => status(&tag, Kind::Bad, None, &format!("Invalid PLAIN response: {e}")),
        };
        let _ = self.server.authenticate_finish(result);
    }

    async fn idle_start(&mut self, tag: Tag<'static>) {
        if self.account.is_none() {
            let _ = self.server.idle_reject(status(&tag, Kind::Bad, None, "Log in first"));
            return;
        }
        self.push_updates(true).await;
        let ccr = CommandContinuationRequest::basic(None, "idling").expect("valid text");
        if self.server.idle_accept(ccr).is_ok() {
            self.idling = Some(tag);
        }
    }

    fn idle_done(&mut self) {
        if let Some(tag) = self.idling.take() {
            self.server.enqueue_status(status(&tag, Kind::Ok, None, "IDLE terminated"));
        }
    }

    fn id(
        &mut self,
        tag: &Tag<'static>,
        parameters: Option<Vec<(IString<'static>, NString<'static>)>>,
    ) -> Status<'static> {
        if let Some(parameters) = parameters {
            let described: Vec<String> = parameters
                .iter()
                .map(|(k, v)| {
                    let value =
                        v.0.as_ref().map(|s| String::from_utf8_lossy(s.as_ref()).into_owned()).unwrap_or_default();
                    format!("{}={value}", String::from_utf8_lossy(k.as_ref()))
                })
                .collect();
            info!(client = %described.join(" "), "client ID");
        }
        let ours = vec![
            (IString::try_from("name").expect("valid"), NString::try_from("tiermail").expect("valid")),
            (
                IString::try_from("version").expect("valid"),
                NString::try_from(env!("CARGO_PKG_VERSION")).expect("valid"),
            ),
        ];
        self.data(Data::Id { parameters: Some(ours) });
        status(tag, Kind::Ok, None, "ID completed")
    }
}

/// The tag of a command that failed to parse, if it has a usable one.
fn tag_of(bytes: &[u8]) -> Option<Tag<'static>> {
    let end = bytes.iter().position(|b| *b == b' ' || *b == b'\r' || *b == b'\n')?;
    let tag = std::str::from_utf8(&bytes[..end]).ok()?;
    Tag::try_from(tag.to_string()).ok()
}

fn is_bad(status: &Status<'_>) -> bool {
    matches!(status, Status::Tagged(Tagged { body: StatusBody { kind: StatusKind::Bad, .. }, .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds bytes to a fresh imap-next server as the session does and
    /// returns the commands it recognised and how many errors it raised.
    fn commands_from(input: &[u8]) -> (Vec<String>, usize) {
        let greeting = imap_codec::imap_types::response::Greeting::ok(None, "hi").unwrap();
        let mut options = Options::default();
        options.crlf_relaxed = true;
        let mut server = Server::new(options, greeting);
        server.enqueue_input(input);
        let (mut commands, mut errors) = (Vec::new(), 0);
        loop {
            match server.next() {
                Ok(Event::CommandReceived { command }) => {
                    commands.push(format!("{} {}", command.tag.as_ref(), command.body.name()))
                }
                Ok(_) | Err(Interrupt::Io(Io::Output(_))) => {}
                Err(Interrupt::Io(Io::NeedMoreInput)) => return (commands, errors),
                Err(Interrupt::Error(_)) => errors += 1,
            }
        }
    }

    #[test]
    fn a_bad_line_does_not_swallow_the_next_command() {
        let (commands, errors) = commands_from(b"a1 FROBNICATE\r\na2 NOOP\r\n");
        assert_eq!(commands, ["a2 NOOP"]);
        assert_eq!(errors, 1);
    }

    #[test]
    fn reply_text_built_from_client_bytes_is_escaped_not_a_panic() {
        let tag = Tag::try_from("a").unwrap();
        let reply = status(&tag, Kind::No, None, "folder name \"é/x\"\r\n\0: bad");
        let Status::Tagged(Tagged { body, .. }) = reply else { panic!("tagged") };
        assert_eq!(body.text.as_ref(), "folder name \"\\u{e9}/x\"\\r\\n\\u{0}: bad");
        assert_eq!(imap_text("").as_ref(), "-");
    }

    #[test]
    fn tags_of_broken_commands_are_recovered_for_the_bad_reply() {
        assert_eq!(tag_of(b"x17 FETCH ((\r\n").map(|t| t.as_ref().to_string()), Some("x17".into()));
        assert_eq!(tag_of(b"\xff\xfe\r\n"), None);
    }

    proptest! {
        /// Garbage (without literal announcements, which legitimately
        /// consume what follows) never panics the reader and never hides
        /// the command after it.
        #[test]
        fn garbage_never_desynchronises_the_next_command(
            garbage in proptest::collection::vec(any::<u8>().prop_filter("no braces or line ends", |b| !b"{}\n".contains(b)), 0..300)
        ) {
            let mut input = garbage.clone();
            input.extend_from_slice(b"\r\nz9 NOOP\r\n");
            let (commands, _) = commands_from(&input);
            prop_assert_eq!(commands.last().map(String::as_str), Some("z9 NOOP"));
        }
    }
}
