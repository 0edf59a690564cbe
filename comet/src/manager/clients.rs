//! A channel's clients: initialising them (and the display-name rules),
//! looking them up, listing and removing them.

use super::Manager;
use crate::provider::{ClientRecord, NewClient};
use crate::{CometError, PrivateToken, PublicToken};
use std::time::Duration;

impl Manager {
    /// Adds a client with fresh random tokens and the channel's default
    /// timeouts, and tells everyone it joined (with the presence window).
    pub async fn initialize_client(
        &self,
        display_name: &str,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        self.initialize_client_with(
            display_name,
            self.settings.connection_timeout,
            self.settings.idle_timeout,
        )
        .await
    }

    /// As [`initialize_client`](Self::initialize_client), with this client's
    /// own timeouts. The idle timeout must exceed the connection timeout, or
    /// a client holding a poll would be reaped.
    pub async fn initialize_client_with(
        &self,
        display_name: &str,
        connection_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        let name_key = display_name.to_lowercase();
        self.create_client(display_name, name_key, connection_timeout, idle_timeout)
            .await
    }

    /// As [`initialize_client`](Self::initialize_client), with the key the
    /// name must be unique by (default: the name lower-cased). An app that
    /// wants look-alike names to count as one passes a normalised key (the
    /// chat passes a confusables skeleton); the provider's name index holds
    /// it, so the rule holds across nodes.
    pub async fn initialize_client_keyed(
        &self,
        display_name: &str,
        name_key: String,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        self.create_client(
            display_name,
            name_key,
            self.settings.connection_timeout,
            self.settings.idle_timeout,
        )
        .await
    }

    /// Adds the client holding `token` (a client of another channel, as a
    /// rule) to this channel too, under `display_name` and the channel's
    /// default timeouts, so one poll can follow both channels
    /// ([`Comet::poll_channels`](crate::Comet::poll_channels)). The same
    /// rules as a new client's apply (name unique here, the policy's
    /// `may_join` and member limit); its public token here is new.
    pub async fn join_with_token(
        &self,
        token: &PrivateToken,
        display_name: &str,
    ) -> Result<ClientRecord, CometError> {
        self.join_with_token_keyed(token, display_name, display_name.to_lowercase())
            .await
    }

    /// As [`join_with_token`](Self::join_with_token), unique by `name_key`
    /// (see [`initialize_client_keyed`](Self::initialize_client_keyed)).
    pub async fn join_with_token_keyed(
        &self,
        token: &PrivateToken,
        display_name: &str,
        name_key: String,
    ) -> Result<ClientRecord, CometError> {
        let (_, record) = self
            .create_client_holding(
                Some(token.clone()),
                display_name,
                name_key,
                self.settings.connection_timeout,
                self.settings.idle_timeout,
            )
            .await?;
        Ok(record)
    }

    async fn create_client(
        &self,
        display_name: &str,
        name_key: String,
        connection_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        self.create_client_holding(
            None,
            display_name,
            name_key,
            connection_timeout,
            idle_timeout,
        )
        .await
    }

    async fn create_client_holding(
        &self,
        token: Option<PrivateToken>,
        display_name: &str,
        name_key: String,
        connection_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        let chars = display_name.chars().count();
        if chars == 0 || display_name.trim() != display_name {
            return Err(CometError::InvalidClient(
                "the display name must not be empty or start or end with spaces".into(),
            ));
        }
        if chars > self.settings.max_display_name_chars {
            return Err(CometError::InvalidClient(format!(
                "the display name is longer than {} characters",
                self.settings.max_display_name_chars
            )));
        }
        if display_name.chars().any(char::is_control) {
            return Err(CometError::InvalidClient(
                "the display name contains control characters".into(),
            ));
        }
        if idle_timeout <= connection_timeout {
            return Err(CometError::InvalidClient(
                "the idle timeout must be longer than the connection timeout".into(),
            ));
        }
        if self.is_closed() {
            return Err(CometError::UnknownChannel(self.name.clone()));
        }
        if !self.policy.may_join(&self.name, display_name) {
            return Err(CometError::Refused(format!(
                "{display_name:?} may not join {:?}",
                self.name
            )));
        }
        let limit = self
            .settings
            .max_clients
            .min(self.policy.max_members(&self.name));
        if self.bounded(self.provider.client_count(&self.name)).await? >= limit {
            return Err(CometError::AtCapacity(format!(
                "the channel has its limit of {limit} clients"
            )));
        }
        let token = token.unwrap_or_else(PrivateToken::generate);
        let record = ClientRecord {
            public: PublicToken::generate(),
            display_name: display_name.to_owned(),
            name_key,
            connection_timeout,
            idle_timeout,
        };
        self.bounded(self.provider.insert_client(
            &self.name,
            NewClient {
                record: &record,
                digest: &token.digest(),
            },
        ))
        .await?;
        self.announce_joined(&record);
        Ok((token, record))
    }

    /// The client holding this private token, if any.
    pub async fn client(&self, token: &PrivateToken) -> Result<Option<ClientRecord>, CometError> {
        self.bounded(self.provider.client_by_digest(&self.name, &token.digest()))
            .await
    }

    pub async fn client_by_public(
        &self,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.bounded(self.provider.client_by_public(&self.name, public))
            .await
    }

    /// Whether the provider can be reached.
    pub async fn ping(&self) -> Result<(), CometError> {
        self.bounded(self.provider.ping()).await
    }

    /// Every client of the channel, ordered by display name.
    pub async fn clients(&self) -> Result<Vec<ClientRecord>, CometError> {
        self.bounded(self.provider.clients(&self.name)).await
    }

    /// Removes a client and tells everyone it left (with the presence
    /// window). `false` if it was already gone (then nothing is sent).
    pub async fn remove_client(&self, public: &PublicToken) -> Result<bool, CometError> {
        match self
            .bounded(self.provider.remove_client(&self.name, public))
            .await?
        {
            Some(record) => {
                self.announce_left(&record);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
