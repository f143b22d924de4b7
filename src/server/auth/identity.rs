//! Identity: who a request is (`Caller`) and whom a run belongs to (`Owner`). Plain
//! types with no I/O, so the services can take them without knowing how they were found.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Who a run belongs to: a guest cookie or a user id. Only the owner may see it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Owner {
    Guest(String),
    User(String),
}

/// The identity of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Guest {
        guest_id: String,
        ip: IpAddr,
    },
    User {
        id: String,
        username: String,
        ip: IpAddr,
    },
}

impl Caller {
    /// The owner key under which this caller's runs are kept.
    pub fn owner(&self) -> Owner {
        match self {
            Caller::Guest { guest_id, .. } => Owner::Guest(guest_id.clone()),
            Caller::User { id, .. } => Owner::User(id.clone()),
        }
    }

    /// The client address the request came from.
    pub fn ip(&self) -> IpAddr {
        match self {
            Caller::Guest { ip, .. } | Caller::User { ip, .. } => *ip,
        }
    }

    pub fn is_guest(&self) -> bool {
        matches!(self, Caller::Guest { .. })
    }
}
