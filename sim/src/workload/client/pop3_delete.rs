//! The `pop3-delete` operation: a POP3 session through a proxy that reads
//! every message's header, marks one or two for deletion and ends with
//! QUIT — or is cut before QUIT, when RFC 1939 says nothing is deleted.
//! The history keeps the ids removed by a QUIT answered +OK (gone for
//! good) or by a QUIT that got no answer (perhaps gone); a cut session
//! removes nothing, so its messages must all stay.

use super::*;

/// Share of sessions cut before QUIT.
const CUT_BEFORE_QUIT: f64 = 0.3;

impl Client {
    pub(super) async fn pop3_delete(&mut self, via: String, quiet: bool) -> Outcome {
        let users = self.plan.users.clone();
        let user = self.pick(&users).clone();
        let cut = self.rng.random_bool(CUT_BEFORE_QUIT);
        let wanted = self.rng.random_range(1..=2usize);
        let offset = self.rng.random_range(0..1000usize);
        let start = now();
        let (mut observed, mut marked, mut quit_sent) = (Observed::default(), Vec::new(), false);
        let session = async {
            let stream = SimNet.connect(&format!("{via}:{POP3_PROXY}")).await?;
            let mut pop = Pop3Client::new(stream).await?;
            pop.login(&user.address, &user.password).await?;
            let mut messages = Vec::new();
            for (n, unique) in pop.uidl().await? {
                let ids = ids_in(&pop.top(n, 0).await?);
                observed.record_uidl(&unique, &ids);
                messages.push((n, ids));
            }
            for k in 0..wanted.min(messages.len()) {
                let (n, ids) = &messages[(offset + k) % messages.len()];
                pop.dele(*n).await?;
                marked.extend(ids.iter().cloned());
            }
            if cut {
                return Ok(());
            }
            quit_sent = true;
            pop.quit().await
        };
        let result = tokio::time::timeout(OP_TIMEOUT, session).await;
        let outcome = match result {
            Ok(Ok(())) => Outcome::Ok,
            Ok(Err(Pop3Error::Io(e))) if !quit_sent && e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Outcome::Temporary(format!("connect: {e}"))
            }
            Ok(Err(Pop3Error::Err(text))) if text.starts_with("[SYS/TEMP]") || text.starts_with("[IN-USE]") => {
                Outcome::Temporary(text)
            }
            Ok(Err(Pop3Error::Err(text))) => Outcome::Permanent(text),
            Ok(Err(e)) => Outcome::Unknown(e.to_string()),
            Err(_) => Outcome::Unknown(format!("no answer within {}s", OP_TIMEOUT.as_secs())),
        };
        // Only a QUIT that was sent can have deleted anything.
        let removed = match &outcome {
            Outcome::Ok | Outcome::Unknown(_) if quit_sent => marked,
            _ => Vec::new(),
        };
        let users = vec![user.address.clone()];
        let (client, end) = (self.name.clone(), now());
        let kind = OpKind::Pop3Delete;
        let (seen, uids, sent) = (observed.seen, observed.uids, Vec::new());
        let op = Op { client, kind, via, users, sent, seen, uids, removed, start, end, outcome, quiet };
        self.history.push(op.clone());
        op.outcome
    }
}
