// SPDX-License-Identifier: GPL-2.0

//! A DMABUF block in the engine's queue: the memory the hardware moves
//! data in or out of, and how its completion is reported.

use crate::{
    dma::{
        block::DeviceBlock,
        fence::{Dependency, Fence, Signalled},
    },
    engine::queue::{DmabufPayload, Owner, Readiness},
    iio::buffer::DoneFence,
};
use kernel::prelude::*;

/// How a DMABUF block reports its completion.
pub(crate) enum Completion {
    /// Seed API: our own fence.
    Seed(Fence),
    /// Mainline API: the IIO core's fence.
    Mainline(DoneFence),
}

/// What is left of a completion once signalled: references to drop
/// outside the fence signalling section.
enum Spent {
    Seed { _fence: Signalled<Fence> },
    Mainline { _fence: Signalled<DoneFence> },
}

/// A userspace DMABUF block queued for the hardware.
pub(crate) struct DmabufBlock {
    memory: DeviceBlock,
    owner: Owner,
    /// `None` once signalled.
    completion: Option<Completion>,
    spent: Option<Spent>,
    /// Fences of other users the hardware must wait for (seed API; the
    /// core waits synchronously in the mainline ENQUEUE).
    dependency: Option<Dependency>,
    /// The first DMA error of a transfer into or out of the block: its
    /// fence signals it.
    dma_error: Option<Error>,
}

impl DmabufBlock {
    pub(crate) fn new(
        memory: DeviceBlock,
        completion: Completion,
        dependency: Option<Dependency>,
    ) -> Self {
        let owner = match completion {
            Completion::Seed(_) => Owner::Seed,
            Completion::Mainline(_) => Owner::Mainline,
        };
        Self {
            memory,
            owner,
            completion: Some(completion),
            spent: None,
            dependency,
            dma_error: None,
        }
    }

    /// A transfer into or out of the block failed with `error`.
    pub(crate) fn set_dma_error(&mut self, error: Error) {
        self.dma_error.get_or_insert(error);
    }

    /// The error a transfer failed with, if one did.
    pub(crate) fn dma_error(&self) -> Option<Error> {
        self.dma_error
    }

    /// The memory, for the hardware.
    pub(crate) fn memory(&mut self) -> &mut DeviceBlock {
        &mut self.memory
    }

    /// The error of the dependency that failed, if one did.
    pub(crate) fn dependency_error(&self) -> Option<Error> {
        self.dependency.as_ref()?.outcome()?.err()
    }

    /// Signals the block's fence, once; inside a fence signalling section.
    /// Drop the block after the section.
    pub(crate) fn signal(&mut self, error: Option<Error>) {
        self.spent = match self.completion.take() {
            Some(Completion::Seed(fence)) => Some(Spent::Seed {
                _fence: fence.signal(error),
            }),
            Some(Completion::Mainline(fence)) => Some(Spent::Mainline {
                _fence: fence.signal(error),
            }),
            None => return,
        };
    }
}

impl Drop for DmabufBlock {
    fn drop(&mut self) {
        // Every fence signals: a block dropped unsignalled was cancelled.
        self.signal(Some(ECANCELED));
    }
}

impl DmabufPayload for DmabufBlock {
    fn key(&self) -> usize {
        self.memory.key()
    }

    fn owner(&self) -> Owner {
        self.owner
    }

    fn readiness(&self) -> Readiness {
        match self.dependency.as_ref().map(|d| d.outcome()) {
            None | Some(Some(Ok(()))) => Readiness::Ready,
            Some(None) => Readiness::Waiting,
            Some(Some(Err(_))) => Readiness::Failed,
        }
    }
}
