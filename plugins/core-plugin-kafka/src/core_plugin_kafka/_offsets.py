"""Which offset of a partition may be committed, given deliveries settled out of order.

Kafka stores one committed offset per partition and consumer group: "everything before this
is done". Deliveries are settled in any order, so a partition's tracker keeps the offsets
handed out, in fetch order, and commits only up to the first one still unsettled.
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    """Offsets of one assigned partition: delivered, settled, and the commit point reached.

    One tracker lives as long as one assignment of the partition to this member; a
    delivery settled after its partition was revoked finds its tracker gone and is ignored
    (the new owner reads it again from the committed offset).
    """

    __slots__ = ("_order", "_settled", "committable", "committed", "nacks", "next")

    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._settled: set[int] = set()
        #: Offset after the last message delivered.
        self.next = -1
        #: The offset every earlier delivery was settled before (what may be committed).
        self.committable = -1
        #: The last offset sent to the group coordinator.
        self.committed = -1
        #: Nacks counted per offset, for dead-lettering.
        self.nacks: dict[int, int] = {}

    def delivered(self, offset: int) -> None:
        """A message at ``offset`` was fetched and handed out (offsets rise per partition)."""
        self._order.append(offset)
        self.next = offset + 1

    @property
    def unsettled(self) -> int:
        """Deliveries neither acknowledged nor dead-lettered yet."""
        return len(self._order) - len(self._settled)

    def settle(self, offset: int) -> bool:
        """Mark ``offset`` done; true if :attr:`committable` moved forward."""
        self._settled.add(offset)
        self.nacks.pop(offset, None)
        order, settled = self._order, self._settled
        while order and order[0] in settled:
            settled.discard(order.popleft())
        point = order[0] if order else self.next
        if point > self.committable:
            self.committable = point
            return True
        return False
