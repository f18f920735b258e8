#!/usr/bin/env python3
"""Writes the recorded topics used by the replay golden tests and the README.

Each recording is what `kcat -C -J -t wa.inbound` prints (one JSON object per
line: topic, partition, offset, tstype, ts, broker, key, payload) or, for
plain.jsonl, one event payload per line. Payloads follow
shared/reference/inbound-events.md (ACS Event Grid and CloudEvents schemas,
Meta webhooks); ids, phones and names are invented. Deterministic: running it
again rewrites the same bytes. Run from the repository root:
    python3 tests/data/replay/make_recordings.py
"""
import json
import os
import zlib

OUT = os.path.dirname(os.path.abspath(__file__))
CHANNEL = "2f61ca04-0698-4593-be4f-58dfe3d8e392"      # ACS channel registration id
PHONE_NUMBER_ID = "109283746501928"                   # Meta phone_number_id
WABA = "102938475610293"
T0 = 1795183391                                       # 2026-11-20T...Z
ACS_TOPIC = ("/subscriptions/5a1b2c3d-0000-4000-8000-000000000001/resourceGroups/rg-donaciones/"
             "providers/Microsoft.Communication/communicationServices/acs-donaciones")

_n = [0]


def guid(tag):
    """A deterministic GUID-shaped id."""
    _n[0] += 1
    h = "%08x" % zlib.crc32(("%s-%d" % (tag, _n[0])).encode())
    return "%s-%s-4%s-8%s-%s%04x" % (h, h[:4], h[4:7], h[1:4], h, _n[0])


def wamid(tag):
    _n[0] += 1
    return "wamid.HBgM%s%06dAA" % (("%08X" % zlib.crc32(tag.encode())), _n[0])


def iso(ts):
    import datetime
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".1234567Z"


def iso_off(ts):
    import datetime
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + "+00:00"


def acs_data(phone, ts, kind, value):
    d = {"channelType": "whatsapp", "from": phone, "to": CHANNEL, "receivedTimestamp": iso_off(ts),
         "messageId": guid("msg")}
    if kind == "text":
        d.update(messageType="text", content=value)
    elif kind == "button":
        d.update(messageType="interactive", interactive={"type": "buttonReply",
                                                         "buttonReply": {"id": value[0], "title": value[1]}})
    elif kind == "list":
        d.update(messageType="interactive", interactive={"type": "listReply",
                                                         "listReply": {"id": value[0], "title": value[1],
                                                                       "description": value[2]}})
    elif kind == "image":
        d.update(messageType="image", media={"mimeType": "image/jpeg", "id": guid("media"), "caption": value})
    return d


def acs_eg(phone, ts, kind, value, eid=None):
    """One ACS AdvancedMessageReceived event in the Event Grid schema (an object)."""
    return {"id": eid or guid("eg"), "topic": ACS_TOPIC,
            "subject": "advancedMessage/sender/%s/recipient/%s" % (phone, CHANNEL),
            "data": acs_data(phone, ts, kind, value),
            "eventType": "Microsoft.Communication.AdvancedMessageReceived", "dataVersion": "1.0",
            "metadataVersion": "1", "eventTime": iso(ts)}


def acs_ce(phone, ts, kind, value):
    """The same event in the CloudEvents 1.0 schema."""
    return {"id": guid("ce"), "source": ACS_TOPIC,
            "subject": "advancedMessage/sender/%s/recipient/%s" % (phone, CHANNEL),
            "data": acs_data(phone, ts, kind, value),
            "type": "Microsoft.Communication.AdvancedMessageReceived", "specversion": "1.0",
            "time": iso(ts), "datacontenttype": "application/json"}


def acs_status(phone, ts, status, eid=None):
    mid = guid("out")
    return {"id": eid or guid("st"), "topic": ACS_TOPIC, "subject": "advancedMessage/%s/status/%s" % (mid, status),
            "data": {"messageId": mid, "status": status, "channelType": "whatsapp", "from": CHANNEL, "to": phone,
                     "receivedTimestamp": iso_off(ts)},
            "eventType": "Microsoft.Communication.AdvancedMessageDeliveryStatusUpdated", "dataVersion": "1.0",
            "metadataVersion": "1", "eventTime": iso(ts)}


def meta_msg(phone, ts, kind, value, mid=None):
    m = {"from": phone, "id": mid or wamid(phone), "timestamp": str(ts)}
    if kind == "text":
        m.update(type="text", text={"body": value})
    elif kind == "button":
        m.update(type="interactive", interactive={"type": "button_reply",
                                                  "button_reply": {"id": value[0], "title": value[1]}})
    elif kind == "list":
        m.update(type="interactive", interactive={"type": "list_reply",
                                                  "list_reply": {"id": value[0], "title": value[1],
                                                                 "description": value[2]}})
    elif kind == "location":
        m.update(type="location", location={"latitude": 4.5981, "longitude": -74.0758,
                                            "name": "Punto de donaciones"})
    return m


def meta_body(msgs, names, statuses=None):
    """A Meta webhook body with one change holding msgs (and contacts), and
    optionally a second change with statuses."""
    changes = []
    if msgs:
        changes.append({"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "573209990001", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": names[m["from"]]}, "wa_id": m["from"]} for m in msgs],
            "messages": msgs}})
    if statuses:
        changes.append({"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "573209990001", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": statuses}})
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": changes}]}


def meta_status(phone, ts, status, sid=None):
    s = {"id": sid or wamid("out" + phone), "status": status, "timestamp": str(ts), "recipient_id": phone}
    if status == "failed":
        s["errors"] = [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                        "error_data": {"details": "More than 24 hours have passed since the customer last replied."}}]
    return s


class Topic:
    """Assigns partitions (by key) and offsets like a 3-partition topic."""

    def __init__(self):
        self.next = [0, 0, 0]
        self.lines = []

    def add(self, key, payload, ts, raw=None):
        part = zlib.crc32(key.encode()) % 3 if key else 0
        rec = {"topic": "wa.inbound", "partition": part, "offset": self.next[part], "tstype": "create",
               "ts": ts * 1000, "broker": 1, "key": key or None,
               "payload": raw if raw is not None else json.dumps(payload, ensure_ascii=False,
                                                                 separators=(",", ":"))}
        self.next[part] += 1
        self.lines.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))

    def write(self, name):
        with open(os.path.join(OUT, name), "wb") as f:
            for line in self.lines:
                f.write((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")


ANA, JUAN, MARIA, PEDRO = "5215512345678", "573001234567", "573109876543", "34612345678"
NAMES = {JUAN: "Juan", MARIA: "María", PEDRO: "Pedro", ANA: "Ana"}
MIN_SALUD = ("min_salud", "Salud", "Hospitales y vacunación")


def sample():
    """Four citizens donating at once: ACS (Event Grid and CloudEvents) and
    Meta, interleaved, with delivery statuses, one Event Grid batch, one Meta
    body carrying two users, one redelivered event and one broken record."""
    t, ts = Topic(), T0
    t.add("+" + JUAN, [acs_eg(JUAN, ts, "text", "Hola, quiero hacer una donación")], ts)
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 2, "text", "quiero donar")], NAMES), ts + 2)
    t.add("+" + ANA, acs_ce(ANA, ts + 3, "text", "DONACION"), ts + 3)
    t.add("+" + PEDRO, meta_body([meta_msg(PEDRO, ts + 4, "text", "hola")], NAMES), ts + 4)
    t.add("+" + JUAN, [acs_status(JUAN, ts + 5, "Delivered")], ts + 5)
    juan_name = acs_eg(JUAN, ts + 20, "text", "Juan Pérez")
    t.add("+" + JUAN, [juan_name], ts + 20)
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 25, "text", "María Fernanda López")], NAMES), ts + 25)
    t.add("+" + PEDRO, meta_body([meta_msg(PEDRO, ts + 27, "text", "quisiera donar")], NAMES), ts + 27)
    t.add("+" + ANA, acs_ce(ANA, ts + 30, "text", "Ana Gómez"), ts + 30)
    t.add("+" + JUAN, [juan_name], ts + 31)           # Event Grid redelivers the same event
    t.add("+" + PEDRO, meta_body([meta_msg(PEDRO, ts + 33, "text", "12345")], NAMES), ts + 33)
    t.add("+" + MARIA, meta_body(None, NAMES, [meta_status(MARIA, ts + 34, "read")]), ts + 34)
    # one Event Grid delivery with two users' events (output batching)
    t.add("+" + JUAN, [acs_eg(JUAN, ts + 40, "text", "Ministerio de Educación"),
                       acs_status(ANA, ts + 40, "Read")], ts + 40)
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 44, "list", MIN_SALUD),
                                  meta_msg(PEDRO, ts + 44, "text", "Pedro Ruiz")], NAMES), ts + 44)
    t.add("+" + ANA, None, ts + 45, raw='{"id": "broken-record", "eventType": ')   # cut off by a bad bridge
    t.add("+" + ANA, acs_ce(ANA, ts + 50, "text", "ministerio de cultura"), ts + 50)
    t.add("+" + JUAN, [acs_eg(JUAN, ts + 60, "button", ("yes", "Sí"))], ts + 60)
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 61, "text", "si, confirmo")], NAMES), ts + 61)
    t.add("+" + PEDRO, meta_body([meta_msg(PEDRO, ts + 62, "text", "Ministerio de Salud")], NAMES), ts + 62)
    t.add("+" + ANA, acs_ce(ANA, ts + 63, "text", "no"), ts + 63)
    t.add("+" + ANA, acs_ce(ANA, ts + 70, "text", "Ana María Gómez"), ts + 70)
    t.add("+" + PEDRO, meta_body([meta_msg(PEDRO, ts + 71, "button", ("no", "No"))], NAMES), ts + 71)
    t.add("+" + ANA, acs_ce(ANA, ts + 75, "text", "Cultura"), ts + 75)
    t.add("+" + PEDRO, meta_body([meta_msg(PEDRO, ts + 76, "text", "cancelar")], NAMES), ts + 76)
    t.add("+" + ANA, acs_ce(ANA, ts + 80, "text", "¡SÍ!"), ts + 80)
    t.write("sample.jsonl")


def duplicates():
    """Redelivered events: the same event id again, right away and later,
    inside a batch, and a Meta body retried whole. None may advance a
    conversation twice; each re-emits the replies it produced first."""
    t, ts = Topic(), T0
    a1 = acs_eg(JUAN, ts, "text", "quiero donar")
    t.add("+" + JUAN, [a1], ts)
    t.add("+" + JUAN, [a1], ts + 1)
    a2 = acs_eg(JUAN, ts + 10, "text", "Juan Pérez")
    t.add("+" + JUAN, [a2], ts + 10)
    m1 = meta_body([meta_msg(MARIA, ts + 11, "text", "DONACIÓN")], NAMES)
    t.add("+" + MARIA, m1, ts + 11)
    t.add("+" + JUAN, [a1, a2], ts + 12)                # an old batch retried whole
    t.add("+" + MARIA, m1, ts + 13)
    a3 = acs_eg(JUAN, ts + 20, "list", ("min_educacion", "Educación", "Escuelas y universidades públicas"))
    t.add("+" + JUAN, [a3], ts + 20)
    st = meta_body(None, NAMES, [meta_status(MARIA, ts + 21, "delivered", "wamid.OUT1")])
    t.add("+" + MARIA, st, ts + 21)
    t.add("+" + MARIA, st, ts + 22)                     # the same status twice
    a4 = acs_eg(JUAN, ts + 30, "button", ("yes", "Sí"))
    t.add("+" + JUAN, [a4], ts + 30)
    t.add("+" + JUAN, [a4], ts + 31)
    t.add("+" + JUAN, [a3], ts + 32)                    # an older one after completion
    t.write("duplicates.jsonl")


def malformed():
    """Bad records in the middle of two conversations: each is dead-lettered
    with its reason, and the conversations go on."""
    t, ts = Topic(), T0
    t.add("+" + JUAN, [acs_eg(JUAN, ts, "text", "quiero donar")], ts)
    t.add("+" + JUAN, None, ts + 1, raw="this is not json")
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 2, "text", "quiero donar")], NAMES), ts + 2)
    t.add("+" + JUAN, None, ts + 3, raw='{"object":"whatsapp_business_account","entry":[')
    t.add("+" + JUAN, None, ts + 4, raw="[" * 100 + "]" * 100)
    t.add("+" + JUAN, None, ts + 5, raw='{"hello":"world"}')
    t.add("+" + JUAN, None, ts + 6, raw="42")
    t.add("+" + JUAN, None, ts + 6, raw="")
    t.add("+" + MARIA, [acs_eg("", ts + 7, "text", "sin remitente")], ts + 7)
    bad_type = acs_eg(JUAN, ts + 8, "text", "x")
    bad_type["data"] = "not an object"
    t.add("+" + JUAN, [bad_type], ts + 8)
    no_id = acs_eg(JUAN, ts + 9, "text", "x")
    del no_id["id"]
    t.add("+" + JUAN, [no_id], ts + 9)                  # no id: not an Event Grid envelope
    meta_no_id = meta_msg(MARIA, ts + 9, "text", "hola")
    del meta_no_id["id"]
    t.add("+" + MARIA, meta_body([meta_no_id], NAMES), ts + 9)
    t.add("+" + JUAN, [acs_eg(JUAN, ts + 10, "text", "a" * (64 * 1024 + 1))], ts + 10)
    t.add("+" + JUAN, [acs_eg(JUAN, ts + 11, "text", "Juan Pérez")], ts + 11)
    t.add("+" + MARIA, meta_body([meta_msg("12", ts + 12, "text", "hola")], {"12": "x"}), ts + 12)
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 13, "location", None)], NAMES), ts + 13)
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 14, "text", "María López")], NAMES), ts + 14)
    t.add("", {"id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66", "topic": ACS_TOPIC, "subject": "",
               "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                        "validationUrl": "https://rp-eastus2.eventgrid.azure.net/api/updatevalidation"},
               "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": iso(ts + 15),
               "metadataVersion": "1", "dataVersion": "1"}, ts + 15)
    t.add("+" + JUAN, [acs_eg(JUAN, ts + 16, "image", "mi comprobante")], ts + 16)
    t.add("+" + JUAN, [acs_eg(JUAN, ts + 17, "text", "Ministerio de Salud")], ts + 17)
    t.lines.append('{"topic":"wa.inbound","partition":0,"offset":99,"key":"+573001234567","payload":"\\u00ff\\u00fe'
                   ' not json"}')
    t.lines.append(b'{"raw":"invalid UTF-8 \xff\xfe in a line"}')
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 18, "text", "Salud")], NAMES), ts + 18)
    t.add("+" + JUAN, [acs_eg(JUAN, ts + 19, "text", "sí")], ts + 19)
    t.add("+" + MARIA, meta_body([meta_msg(MARIA, ts + 20, "text", "SI")], NAMES), ts + 20)
    t.write("malformed.jsonl")


def bsuid_only(ev):
    """A user who hides the phone number: ACS sends from "" and the
    business-scoped user id, which becomes the conversation key."""
    ev["data"]["from"] = ""
    ev["data"]["fromBSUID"] = "CO.1520394857610293847"
    return ev


def plain():
    """Plain event payloads, one per line (no kcat wrapper): the same
    conversation shapes through the three envelope kinds, plus help and
    restart commands, and a user known only by a BSUID."""
    ts = T0
    lines = [
        [acs_eg(JUAN, ts, "text", "hola")],
        acs_ce(ANA, ts + 1, "text", "Quisiera donar"),
        meta_body([meta_msg(MARIA, ts + 2, "text", "donacion")], NAMES),
        [acs_eg(JUAN, ts + 3, "text", "ayuda")],
        acs_ce(ANA, ts + 4, "text", "A"),
        acs_ce(ANA, ts + 5, "text", "Ana Gómez"),
        meta_body([meta_msg(MARIA, ts + 6, "text", "reiniciar")], NAMES),
        meta_body([meta_msg(MARIA, ts + 7, "text", "María")], NAMES),
        [acs_eg(JUAN, ts + 8, "text", "quiero hacer una donación")],
        acs_ce(ANA, ts + 9, "text", "empezar de nuevo"),
        [acs_eg(JUAN, ts + 10, "text", "Juan Pérez")],
        [acs_eg(JUAN, ts + 11, "text", "ayuda")],
        [acs_eg(JUAN, ts + 12, "text", "Ministerio de Hacienda")],
        [acs_eg(JUAN, ts + 13, "text", "tal vez")],
        [acs_eg(JUAN, ts + 14, "text", "Sí")],
        [acs_eg(JUAN, ts + 15, "text", "quiero donar")],
        [bsuid_only(acs_eg("", ts + 16, "text", "quiero donar"))],
        [bsuid_only(acs_eg("", ts + 17, "text", "Lucía Torres"))],
    ]
    with open(os.path.join(OUT, "plain.jsonl"), "w", encoding="utf-8") as f:
        for p in lines:
            f.write(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    sample()
    duplicates()
    malformed()
    plain()
