"""OpenAPI links of the partner API: which answer feeds which next request.

A link says, for instance, that the ``member_id`` a successful enrolment returns is the
``member_id`` of a later earn, and the ``hold_id`` of a hold the path of its capture or void.
Client generators and tools that walk an API by its links (Schemathesis's stateful mode runs
them in our tests) read these; targets are named by ``operationRef`` so they do not depend on
generated operation ids.
"""

from __future__ import annotations

from typing import Any

MEMBER = "$response.body#/member_id"


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _link(path: str, method: str, description: str, *, parameters: dict | None = None,
          body: dict | None = None) -> dict[str, Any]:
    link: dict[str, Any] = {"operationRef": _ref(path, method), "description": description}
    if parameters:
        link["parameters"] = parameters
    if body:
        link["requestBody"] = body
    return link


def _member_links() -> dict[str, dict]:
    return {
        "GetMember": _link("/v1/members/{member_id}", "get", "The member's balance and status.",
                           parameters={"path.member_id": MEMBER}),
        "GetHistory": _link("/v1/members/{member_id}/history", "get", "The member's history with you.",
                            parameters={"path.member_id": MEMBER}),
        "Earn": _link("/v1/earn", "post", "Award the member points.", body={"member_id": MEMBER}),
        "Burn": _link("/v1/burn", "post", "Spend the member's points.", body={"member_id": MEMBER}),
        "Hold": _link("/v1/holds", "post", "Reserve the member's points.", body={"member_id": MEMBER}),
    }


def _reverse(description: str) -> dict:
    return _link("/v1/reversals", "post", description, body={"original_reference": "$response.body#/reference"})


def _proof() -> dict:
    return _link("/v1/transactions/{transaction_id}/proof", "get",
                 "The inclusion proof of the transaction, once a checkpoint holds it.",
                 parameters={"path.transaction_id": "$response.body#/transaction_id"})


# (path, method, statuses) -> links of those answers
LINKS: dict[tuple[str, str, tuple[str, ...]], dict[str, dict]] = {
    ("/v1/members", "post", ("200", "201")): {
        **_member_links(),
        "LinkToken": _link("/v1/members/{member_id}/link-tokens", "post",
                           "A consent token to link the member to another partner.",
                           parameters={"path.member_id": MEMBER}),
    },
    ("/v1/earn", "post", ("200",)): {"Reverse": _reverse("Reverse the earn by its reference."),
                                     "Proof": _proof(), **_member_links()},
    ("/v1/burn", "post", ("200",)): {"Reverse": _reverse("Reverse the burn by its reference."),
                                     "Proof": _proof(), **_member_links()},
    ("/v1/holds", "post", ("200",)): {
        "Capture": _link("/v1/holds/{hold_id}/capture", "post", "Spend the held points.",
                         parameters={"path.hold_id": "$response.body#/hold_id"}),
        "Void": _link("/v1/holds/{hold_id}/void", "post", "Release the hold.",
                      parameters={"path.hold_id": "$response.body#/hold_id"}),
        "GetMember": _member_links()["GetMember"],
    },
    ("/v1/holds/{hold_id}/capture", "post", ("200",)): {"Reverse": _reverse("Reverse the capture by its reference."),
                                                        "Proof": _proof()},
    ("/v1/checkpoints/latest", "get", ("200",)): {
        "Consistency": _link("/v1/checkpoints/consistency", "get",
                             "A consistency proof from this checkpoint (to a later one).",
                             parameters={"query.from": "$response.body#/tree_size",
                                         "query.to": "$response.body#/tree_size"}),
    },
}


def add_links(document: dict) -> dict:
    """Write the links into the generated OpenAPI document (in place; returned for convenience)."""
    for (path, method, statuses), links in LINKS.items():
        responses = document["paths"][path][method]["responses"]
        for status in statuses:
            if status in responses:
                responses[status]["links"] = links
    return document
