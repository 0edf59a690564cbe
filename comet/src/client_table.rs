//! The in-process provider's clients of one channel: each client's record
//! in one slot of a table, found by public token, token digest or name key
//! through indexes that hold only the slot's number.
//!
//! Memory is the point: every logged-in client lives here. Keyed by value
//! (a 192-byte bucket per client in the public-token map, a second copy of
//! the public token in each of the other two), the three maps cost about
//! 510 bytes per client at 10 000 clients, hash tables being 60 – 90 % full;
//! with only 4-byte slot numbers in the indexes (the keys are read from
//! the slot), about 250.

use super::provider::ClientRecord;
use super::{PublicToken, TokenDigest, TokenHasher};
use hashbrown::HashTable;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, RandomState};
use std::time::Instant;

pub struct ClientEntry {
    pub record: ClientRecord,
    pub digest: TokenDigest,
    pub last_seen: Instant,
}

/// Which index already holds a client being added.
#[derive(Debug, PartialEq, Eq)]
pub enum Clash {
    Name,
    Token,
}

#[derive(Default)]
pub struct ClientTable {
    /// Slots; a removed client's slot is reused by the next one added.
    slots: Vec<Option<ClientEntry>>,
    free: Vec<u32>,
    /// Slot numbers, hashed by the slot's public token, digest, and
    /// lower-cased display name (so "Ann" and "ann" cannot both log in).
    by_public: HashTable<u32>,
    by_digest: HashTable<u32>,
    by_name: HashTable<u32>,
    /// Tokens are random bytes the server made ([`TokenHasher`]); names
    /// are a client's choice, so they get SipHash with a random key.
    tokens: BuildHasherDefault<TokenHasher>,
    names: RandomState,
}

/// The entry in a slot an index points at.
fn live(slots: &[Option<ClientEntry>], slot: u32) -> &ClientEntry {
    slots[slot as usize]
        .as_ref()
        .expect("an index points at a live slot")
}

fn live_mut(slots: &mut [Option<ClientEntry>], slot: u32) -> &mut ClientEntry {
    slots[slot as usize]
        .as_mut()
        .expect("an index points at a live slot")
}

impl ClientTable {
    fn token_hash(&self, key: impl Hash) -> u64 {
        self.tokens.hash_one(key)
    }

    fn name_hash(&self, key: &str) -> u64 {
        self.names.hash_one(key)
    }

    /// A client's hashes in the public-token, digest and name indexes.
    fn hashes(&self, record: &ClientRecord, digest: &TokenDigest) -> [u64; 3] {
        [
            self.token_hash(record.public),
            self.token_hash(digest),
            self.name_hash(&record.name_key),
        ]
    }

    fn find_public(&self, public: &PublicToken) -> Option<u32> {
        let slots = &self.slots;
        self.by_public
            .find(self.token_hash(public), |&s| {
                live(slots, s).record.public == *public
            })
            .copied()
    }

    fn find_digest(&self, digest: &TokenDigest) -> Option<u32> {
        let slots = &self.slots;
        self.by_digest
            .find(self.token_hash(digest), |&s| {
                live(slots, s).digest == *digest
            })
            .copied()
    }

    fn find_name(&self, name_key: &str) -> Option<u32> {
        let slots = &self.slots;
        self.by_name
            .find(self.name_hash(name_key), |&s| {
                live(slots, s).record.name_key == name_key
            })
            .copied()
    }

    pub fn insert(&mut self, record: &ClientRecord, digest: &TokenDigest) -> Result<(), Clash> {
        if self.find_name(&record.name_key).is_some() {
            return Err(Clash::Name);
        }
        if self.find_digest(digest).is_some() || self.find_public(&record.public).is_some() {
            return Err(Clash::Token);
        }
        let [public_hash, digest_hash, name_hash] = self.hashes(record, digest);
        let entry = ClientEntry {
            record: record.clone(),
            digest: *digest,
            last_seen: Instant::now(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("under 2^32 clients");
                self.slots.push(Some(entry));
                slot
            }
        };
        let Self {
            slots,
            by_public,
            by_digest,
            by_name,
            tokens,
            names,
            ..
        } = self;
        by_public.insert_unique(public_hash, slot, |&s| {
            tokens.hash_one(live(slots, s).record.public)
        });
        by_digest.insert_unique(digest_hash, slot, |&s| {
            tokens.hash_one(live(slots, s).digest)
        });
        by_name.insert_unique(name_hash, slot, |&s| {
            names.hash_one(live(slots, s).record.name_key.as_str())
        });
        Ok(())
    }

    pub fn by_digest(&self, digest: &TokenDigest) -> Option<&ClientEntry> {
        let slot = self.find_digest(digest)?;
        Some(live(&self.slots, slot))
    }

    pub fn by_digest_mut(&mut self, digest: &TokenDigest) -> Option<&mut ClientEntry> {
        let slot = self.find_digest(digest)?;
        Some(live_mut(&mut self.slots, slot))
    }

    pub fn by_public(&self, public: &PublicToken) -> Option<&ClientEntry> {
        let slot = self.find_public(public)?;
        Some(live(&self.slots, slot))
    }

    pub fn by_public_mut(&mut self, public: &PublicToken) -> Option<&mut ClientEntry> {
        let slot = self.find_public(public)?;
        Some(live_mut(&mut self.slots, slot))
    }

    pub fn iter(&self) -> impl Iterator<Item = &ClientEntry> {
        self.slots.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.by_public.len()
    }

    pub fn remove(&mut self, public: &PublicToken) -> Option<ClientEntry> {
        let slot = self.find_public(public)?;
        let entry = live(&self.slots, slot);
        let [public_hash, digest_hash, name_hash] = self.hashes(&entry.record, &entry.digest);
        for (index, hash) in [
            (&mut self.by_public, public_hash),
            (&mut self.by_digest, digest_hash),
            (&mut self.by_name, name_hash),
        ] {
            if let Ok(found) = index.find_entry(hash, |&s| s == slot) {
                found.remove();
            }
        }
        self.free.push(slot);
        self.slots[slot as usize].take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(name: &str) -> (ClientRecord, TokenDigest) {
        let token = super::super::PrivateToken::generate();
        let record = ClientRecord {
            public: PublicToken::generate(),
            display_name: name.to_owned(),
            name_key: name.to_lowercase(),
            connection_timeout: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(30),
        };
        (record, token.digest())
    }

    #[test]
    fn every_index_finds_the_client_until_it_is_removed() {
        let mut table = ClientTable::default();
        let (ann, ann_digest) = record("Ann");
        let (bob, bob_digest) = record("Bob");
        table.insert(&ann, &ann_digest).unwrap();
        table.insert(&bob, &bob_digest).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.by_digest(&ann_digest).unwrap().record.public,
            ann.public
        );
        assert_eq!(table.by_public(&bob.public).unwrap().digest, bob_digest);

        let removed = table.remove(&ann.public).unwrap();
        assert_eq!(removed.record.display_name, "Ann");
        assert!(table.by_digest(&ann_digest).is_none());
        assert!(table.by_public(&ann.public).is_none());
        assert!(table.remove(&ann.public).is_none(), "removed once");
        assert_eq!(table.len(), 1);
        assert_eq!(table.iter().count(), 1);
        // Her name is free again, and her slot is reused.
        let (ann2, ann2_digest) = record("ann");
        table.insert(&ann2, &ann2_digest).unwrap();
        assert_eq!(table.slots.len(), 2);
        assert_eq!(
            table.by_digest(&ann2_digest).unwrap().record.public,
            ann2.public
        );
        assert_eq!(
            table.by_public(&bob.public).unwrap().record.display_name,
            "Bob"
        );
    }

    #[test]
    fn a_taken_name_or_token_is_refused_and_changes_nothing() {
        let mut table = ClientTable::default();
        let (ann, digest) = record("Ann");
        table.insert(&ann, &digest).unwrap();
        let (same_name, other_digest) = record("ann");
        assert_eq!(table.insert(&same_name, &other_digest), Err(Clash::Name));
        let (mut same_public, fresh) = record("Cy");
        same_public.public = ann.public;
        assert_eq!(table.insert(&same_public, &fresh), Err(Clash::Token));
        let (other, _) = record("Dee");
        assert_eq!(table.insert(&other, &digest), Err(Clash::Token));
        assert_eq!(table.len(), 1);
        assert_eq!(table.slots.len(), 1);
        assert!(table.by_digest(&other_digest).is_none());
    }
}
