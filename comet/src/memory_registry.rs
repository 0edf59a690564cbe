//! The in-process provider's record of the channels opened at run time.

use crate::channels::at_channel_limit;
use crate::CometError;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The channels opened and not closed since, with the open limit applied
/// under the same lock as the insert (two opens racing for the last place
/// cannot both get it).
#[derive(Default)]
pub(crate) struct OpenChannels(Mutex<BTreeSet<String>>);

impl OpenChannels {
    /// `Ok(true)`: opened now; `Ok(false)`: it was open.
    pub(crate) fn open(&self, channel: &str, max_channels: usize) -> Result<bool, CometError> {
        let mut open = self.0.lock().expect("open channels poisoned");
        if open.contains(channel) {
            return Ok(false);
        }
        if open.len() >= max_channels {
            return Err(at_channel_limit(max_channels));
        }
        Ok(open.insert(channel.to_owned()))
    }

    pub(crate) fn contains(&self, channel: &str) -> bool {
        self.0
            .lock()
            .expect("open channels poisoned")
            .contains(channel)
    }

    /// Sorted by name.
    pub(crate) fn names(&self) -> Vec<String> {
        let open = self.0.lock().expect("open channels poisoned");
        open.iter().cloned().collect()
    }

    /// Whether it was open.
    pub(crate) fn close(&self, channel: &str) -> bool {
        self.0
            .lock()
            .expect("open channels poisoned")
            .remove(channel)
    }
}
