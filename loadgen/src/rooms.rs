//! The rooms scenario (issue 16): N rooms, each opened by its publisher
//! through `create_room` (so a room's first user is its publisher, and
//! every room is open before any client joins), and clients that each join
//! K of them and follow all K, plus the chat room, with ONE `POST /comet`
//! poll carrying a cursor per room.
//!
//! What stays constant as K changes is the room: N rooms of M members
//! each, the same publishers at the same rate, so the same deliveries per
//! second. Only the number of clients moves (N × M ÷ K), and so how many
//! rooms each client's one poll follows: K = 10 is a tenth of the clients
//! with ten times the rooms each.
//!
//! Publisher p is room p: the tracker's per-publisher streams are the
//! rooms, and a client expects only its own rooms' messages.
//!
//! The chat room is in every poll because a session lives there: a client
//! that stops polling it is removed as idle after `COMET_IDLE_TIMEOUT`,
//! session and rooms with it. It is followed from now on and carries
//! nothing measured (joins and leaves, none during sending).

use crate::http::{form_encode, Conn};
use crate::proto::{self, CallError};
use serde::{Deserialize, Serialize};

/// The chat's default room (its channel name), which every session is in.
pub const CHAT_ROOM: &str = "chat";

/// How the scenario's clients are spread over its rooms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// N: rooms, each with one publisher.
    pub rooms: usize,
    /// M: clients in each room (besides its publisher).
    pub members: usize,
    /// K: rooms each client is in and follows in its one poll.
    pub per_client: usize,
}

impl Layout {
    /// How many clients it takes: N × M ÷ K, rounded up (then a few rooms
    /// have one member more).
    pub fn clients(&self) -> usize {
        (self.rooms * self.members).div_ceil(self.per_client.max(1))
    }

    /// The rooms client `client` (its global index) is in: the next K of
    /// the N in turn, so every room gets M members (± 1) and a client's K
    /// rooms are distinct (K ≤ N).
    pub fn rooms_of(&self, client: usize) -> Vec<usize> {
        (0..self.per_client)
            .map(|j| (client * self.per_client + j) % self.rooms)
            .collect()
    }
}

/// Room `room`'s name in run `run`: a short lower-case word, as the
/// chat's room names must be.
pub fn room_name(run: &str, room: usize) -> String {
    format!("lg{}-r{room}", run.to_ascii_lowercase())
}

/// A client's share of `expected` (messages sent per publisher, which is
/// per room): its own rooms' counts, 0 for the others.
pub fn expected_of(expected: &[u64], rooms: &[usize]) -> Vec<u64> {
    let mut own = vec![0; expected.len()];
    for &r in rooms {
        if let Some(&n) = expected.get(r) {
            own[r] = n;
        }
    }
    own
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A server function taking one form field; any 2xx or 3xx is done
/// (`create_room` redirects a plain form post to the room).
async fn call(
    conn: &mut Conn,
    token: &str,
    path: &str,
    field: &str,
    value: &str,
    buf: &mut Vec<u8>,
) -> Result<(), CallError> {
    let mut form = format!("{field}=");
    form_encode(value, &mut form);
    let head = conn
        .request("POST", path, Some(token), Some(FORM), form.as_bytes(), buf)
        .await?;
    if !(200..400).contains(&head.status) {
        return Err(CallError::Status(head.status));
    }
    Ok(())
}

/// `POST /api/create_room`: opens `name` and puts the caller in it.
pub async fn create_room(
    conn: &mut Conn,
    token: &str,
    name: &str,
    buf: &mut Vec<u8>,
) -> Result<(), CallError> {
    call(conn, token, "/api/create_room", "name", name, buf).await
}

/// Joins each of `rooms` (`join_room`; joined already is fine, so a retry
/// is too) and reads its cursor (`recent_messages(room)`), so nothing sent
/// to it afterwards is missed. Returns the cursors the poll starts from:
/// the chat room from now on, then the rooms.
pub async fn join_and_follow(
    conn: &mut Conn,
    token: &str,
    rooms: &[String],
    buf: &mut Vec<u8>,
) -> Result<Vec<(String, Option<String>)>, CallError> {
    let mut cursors = vec![(CHAT_ROOM.to_owned(), None)];
    for room in rooms {
        call(conn, token, "/api/join_room", "room", room, buf).await?;
        let cursor = proto::recent_cursor(conn, token, Some(room), buf).await?;
        cursors.push((room.clone(), Some(cursor)));
    }
    Ok(cursors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(layout: &Layout) -> Vec<usize> {
        let mut count = vec![0; layout.rooms];
        for c in 0..layout.clients() {
            for r in layout.rooms_of(c) {
                count[r] += 1;
            }
        }
        count
    }

    #[test]
    fn every_room_gets_its_members_whatever_the_rooms_per_client() {
        for per_client in [1, 2, 10, 50] {
            let layout = Layout {
                rooms: 50,
                members: 40,
                per_client,
            };
            assert_eq!(layout.clients(), 2000 / per_client);
            assert!(
                members(&layout).iter().all(|&m| m == 40),
                "K = {per_client}"
            );
        }
    }

    #[test]
    fn a_client_is_in_distinct_rooms() {
        let layout = Layout {
            rooms: 7,
            members: 3,
            per_client: 4,
        };
        assert_eq!(layout.clients(), 6);
        for c in 0..layout.clients() {
            let mut rooms = layout.rooms_of(c);
            rooms.sort();
            rooms.dedup();
            assert_eq!(rooms.len(), 4);
        }
        // 24 places for 21 members: three rooms get one more.
        let m = members(&layout);
        assert!(m.iter().all(|&n| n == 3 || n == 4), "{m:?}");
        assert_eq!(m.iter().sum::<usize>(), 24);
    }

    #[test]
    fn a_client_expects_only_its_rooms() {
        assert_eq!(expected_of(&[5, 6, 7, 8], &[1, 3]), [0, 6, 0, 8]);
        assert_eq!(expected_of(&[5], &[0, 9]), [5]);
    }

    #[test]
    fn room_names_are_chat_room_names() {
        let name = room_name("Ab12xYz9", 99);
        assert_eq!(name, "lgab12xyz9-r99");
        assert!(name.len() <= 32);
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }
}
