//! The gRPC schema of `proto/cluster.proto` and its conversions to and from openraft's
//! types. Every conversion from the wire is a `TryFrom` that reports what was missing or
//! undecodable: a peer speaking garbage gets an `invalid_argument` status, never a panic.

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LeaderId, SnapshotMeta, StoredMembership};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use super::types::{NodeId, TypeConfig};

/// The generated messages, client and server.
#[allow(unreachable_pub, missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("raftmq.cluster.v1");
}

/// Why a message from a peer could not be turned into openraft's types.
#[derive(Debug, Error)]
pub enum WireError {
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("field {field} cannot be decoded: {source}")]
    Decode {
        field: &'static str,
        source: bincode::error::DecodeError,
    },
    #[error("cannot encode {field}: {source}")]
    Encode {
        field: &'static str,
        source: bincode::error::EncodeError,
    },
}

impl From<WireError> for tonic::Status {
    fn from(e: WireError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

pub fn encode<T: Serialize>(field: &'static str, value: &T) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|source| WireError::Encode { field, source })
}

pub fn decode<T: DeserializeOwned>(field: &'static str, bytes: &[u8]) -> Result<T, WireError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|source| WireError::Decode { field, source })
}

type LogId = openraft::LogId<NodeId>;
type Vote = openraft::Vote<NodeId>;

impl From<LogId> for pb::LogId {
    fn from(id: LogId) -> Self {
        pb::LogId {
            term: id.leader_id.term,
            node_id: id.leader_id.node_id,
            index: id.index,
        }
    }
}

impl From<pb::LogId> for LogId {
    fn from(id: pb::LogId) -> Self {
        LogId::new(CommittedLeaderId::new(id.term, id.node_id), id.index)
    }
}

impl From<Vote> for pb::Vote {
    fn from(vote: Vote) -> Self {
        pb::Vote {
            term: vote.leader_id.term,
            node_id: vote.leader_id.node_id,
            committed: vote.committed,
        }
    }
}

impl From<pb::Vote> for Vote {
    fn from(vote: pb::Vote) -> Self {
        Vote {
            leader_id: LeaderId::new(vote.term, vote.node_id),
            committed: vote.committed,
        }
    }
}

fn required<T>(field: &'static str, value: Option<T>) -> Result<T, WireError> {
    value.ok_or(WireError::Missing(field))
}

impl TryFrom<&Entry<TypeConfig>> for pb::Entry {
    type Error = WireError;
    fn try_from(entry: &Entry<TypeConfig>) -> Result<Self, WireError> {
        Ok(pb::Entry {
            log_id: Some(entry.log_id.into()),
            payload: encode("entry payload", &entry.payload)?.into(),
        })
    }
}

impl TryFrom<pb::Entry> for Entry<TypeConfig> {
    type Error = WireError;
    fn try_from(entry: pb::Entry) -> Result<Self, WireError> {
        let payload: EntryPayload<TypeConfig> = decode("entry payload", &entry.payload)?;
        Ok(Entry {
            log_id: required("entry log_id", entry.log_id)?.into(),
            payload,
        })
    }
}

impl TryFrom<&AppendEntriesRequest<TypeConfig>> for pb::AppendEntriesRequest {
    type Error = WireError;
    fn try_from(req: &AppendEntriesRequest<TypeConfig>) -> Result<Self, WireError> {
        Ok(pb::AppendEntriesRequest {
            vote: Some(req.vote.into()),
            prev_log_id: req.prev_log_id.map(Into::into),
            entries: req
                .entries
                .iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            leader_commit: req.leader_commit.map(Into::into),
        })
    }
}

impl TryFrom<pb::AppendEntriesRequest> for AppendEntriesRequest<TypeConfig> {
    type Error = WireError;
    fn try_from(req: pb::AppendEntriesRequest) -> Result<Self, WireError> {
        Ok(AppendEntriesRequest {
            vote: required("vote", req.vote)?.into(),
            prev_log_id: req.prev_log_id.map(Into::into),
            entries: req
                .entries
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            leader_commit: req.leader_commit.map(Into::into),
        })
    }
}

impl From<AppendEntriesResponse<NodeId>> for pb::AppendEntriesResponse {
    fn from(resp: AppendEntriesResponse<NodeId>) -> Self {
        use pb::append_entries_response::Result as R;
        let result = match resp {
            AppendEntriesResponse::Success => R::Success(pb::Empty {}),
            AppendEntriesResponse::PartialSuccess(matching) => {
                R::PartialSuccess(pb::PartialSuccess {
                    matching: matching.map(Into::into),
                })
            }
            AppendEntriesResponse::Conflict => R::Conflict(pb::Empty {}),
            AppendEntriesResponse::HigherVote(vote) => R::HigherVote(vote.into()),
        };
        pb::AppendEntriesResponse {
            result: Some(result),
        }
    }
}

impl TryFrom<pb::AppendEntriesResponse> for AppendEntriesResponse<NodeId> {
    type Error = WireError;
    fn try_from(resp: pb::AppendEntriesResponse) -> Result<Self, WireError> {
        use pb::append_entries_response::Result as R;
        Ok(match required("append entries result", resp.result)? {
            R::Success(_) => AppendEntriesResponse::Success,
            R::PartialSuccess(p) => {
                AppendEntriesResponse::PartialSuccess(p.matching.map(Into::into))
            }
            R::Conflict(_) => AppendEntriesResponse::Conflict,
            R::HigherVote(vote) => AppendEntriesResponse::HigherVote(vote.into()),
        })
    }
}

impl From<&VoteRequest<NodeId>> for pb::VoteRequest {
    fn from(req: &VoteRequest<NodeId>) -> Self {
        pb::VoteRequest {
            vote: Some(req.vote.into()),
            last_log_id: req.last_log_id.map(Into::into),
        }
    }
}

impl TryFrom<pb::VoteRequest> for VoteRequest<NodeId> {
    type Error = WireError;
    fn try_from(req: pb::VoteRequest) -> Result<Self, WireError> {
        Ok(VoteRequest {
            vote: required("vote", req.vote)?.into(),
            last_log_id: req.last_log_id.map(Into::into),
        })
    }
}

impl From<VoteResponse<NodeId>> for pb::VoteResponse {
    fn from(resp: VoteResponse<NodeId>) -> Self {
        pb::VoteResponse {
            vote: Some(resp.vote.into()),
            vote_granted: resp.vote_granted,
            last_log_id: resp.last_log_id.map(Into::into),
        }
    }
}

impl TryFrom<pb::VoteResponse> for VoteResponse<NodeId> {
    type Error = WireError;
    fn try_from(resp: pb::VoteResponse) -> Result<Self, WireError> {
        Ok(VoteResponse {
            vote: required("vote", resp.vote)?.into(),
            vote_granted: resp.vote_granted,
            last_log_id: resp.last_log_id.map(Into::into),
        })
    }
}

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

impl TryFrom<&Meta> for pb::SnapshotMeta {
    type Error = WireError;
    fn try_from(meta: &Meta) -> Result<Self, WireError> {
        Ok(pb::SnapshotMeta {
            last_log_id: meta.last_log_id.map(Into::into),
            last_membership: encode("last_membership", &meta.last_membership)?.into(),
            snapshot_id: meta.snapshot_id.clone(),
        })
    }
}

impl TryFrom<pb::SnapshotMeta> for Meta {
    type Error = WireError;
    fn try_from(meta: pb::SnapshotMeta) -> Result<Self, WireError> {
        let last_membership: StoredMembership<NodeId, openraft::BasicNode> =
            decode("last_membership", &meta.last_membership)?;
        Ok(SnapshotMeta {
            last_log_id: meta.last_log_id.map(Into::into),
            last_membership,
            snapshot_id: meta.snapshot_id,
        })
    }
}

impl TryFrom<&InstallSnapshotRequest<TypeConfig>> for pb::InstallSnapshotRequest {
    type Error = WireError;
    fn try_from(req: &InstallSnapshotRequest<TypeConfig>) -> Result<Self, WireError> {
        Ok(pb::InstallSnapshotRequest {
            vote: Some(req.vote.into()),
            meta: Some((&req.meta).try_into()?),
            offset: req.offset,
            data: req.data.clone().into(),
            done: req.done,
        })
    }
}

impl TryFrom<pb::InstallSnapshotRequest> for InstallSnapshotRequest<TypeConfig> {
    type Error = WireError;
    fn try_from(req: pb::InstallSnapshotRequest) -> Result<Self, WireError> {
        Ok(InstallSnapshotRequest {
            vote: required("vote", req.vote)?.into(),
            meta: required("meta", req.meta)?.try_into()?,
            offset: req.offset,
            data: req.data.to_vec(),
            done: req.done,
        })
    }
}

impl From<InstallSnapshotResponse<NodeId>> for pb::InstallSnapshotResponse {
    fn from(resp: InstallSnapshotResponse<NodeId>) -> Self {
        pb::InstallSnapshotResponse {
            vote: Some(resp.vote.into()),
        }
    }
}

impl TryFrom<pb::InstallSnapshotResponse> for InstallSnapshotResponse<NodeId> {
    type Error = WireError;
    fn try_from(resp: pb::InstallSnapshotResponse) -> Result<Self, WireError> {
        Ok(InstallSnapshotResponse {
            vote: required("vote", resp.vote)?.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::command::{Command, CommandBatch};

    #[test]
    fn append_entries_round_trips() {
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote {
                leader_id: LeaderId::new(3, 7),
                committed: true,
            },
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(2, 7), 41)),
            entries: vec![
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(3, 7), 42),
                    payload: EntryPayload::Blank,
                },
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(3, 7), 43),
                    payload: EntryPayload::Normal(CommandBatch(vec![
                        Command::Tick { now: 5 },
                        Command::NodeDown { node: 3, now: 6 },
                    ])),
                },
            ],
            leader_commit: None,
        };
        let wire = pb::AppendEntriesRequest::try_from(&req).unwrap();
        let back = AppendEntriesRequest::<TypeConfig>::try_from(wire).unwrap();
        assert_eq!(back.vote, req.vote);
        assert_eq!(back.prev_log_id, req.prev_log_id);
        assert_eq!(back.entries, req.entries);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let missing = pb::AppendEntriesRequest {
            vote: None,
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        };
        assert!(matches!(
            AppendEntriesRequest::<TypeConfig>::try_from(missing),
            Err(WireError::Missing("vote"))
        ));
        let garbage = pb::Entry {
            log_id: Some(pb::LogId {
                term: 1,
                node_id: 1,
                index: 1,
            }),
            payload: bytes::Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x13]),
        };
        assert!(matches!(
            Entry::<TypeConfig>::try_from(garbage),
            Err(WireError::Decode { .. })
        ));
        assert!(matches!(
            AppendEntriesResponse::<NodeId>::try_from(pb::AppendEntriesResponse { result: None }),
            Err(WireError::Missing(_))
        ));
    }
}
