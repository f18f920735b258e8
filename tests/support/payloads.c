/*
 * payloads.c - see payloads.h.
 */
#include "payloads.h"

#include <stdio.h>
#include <string.h>

const char *const payload_cycle_text[4] = {"Hola, quiero hacer una donaci\xc3\xb3n", "Juan P\xc3\xa9rez",
					   "Ministerio de Educaci\xc3\xb3n", "si"};
const char *const payload_cycle_step[4] = {"waiting_for_name", "waiting_for_ministry", "waiting_for_confirmation",
					   "completed"};

int payload_text(char *buf, size_t cap, int meta, const char *phone_digits, uint64_t seq, const char *text)
{
	if (meta)
		return snprintf(buf, cap,
				"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102938475610293\","
				"\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
				"\"display_phone_number\":\"573209990001\",\"phone_number_id\":\"109283746501928\"},"
				"\"contacts\":[{\"profile\":{\"name\":\"Juan\"},\"wa_id\":\"%s\"}],\"messages\":[{"
				"\"from\":\"%s\",\"id\":\"wamid.HBgMNTczMDAxMjM0NTY3FQIAEhgU%016llx\",\"timestamp\":"
				"\"1795183391\",\"text\":{\"body\":\"%s\"},\"type\":\"text\"}]},\"field\":\"messages\"}]}]}",
				phone_digits, phone_digits, (unsigned long long)seq, text);
	return snprintf(buf, cap,
			"[{\"id\":\"%08llx-1f2e-4d3c-8b4a-59687a6b7c8d\",\"topic\":\"/subscriptions/5a1b2c3d-0000-4000-"
			"8000-000000000001/resourceGroups/rg-donaciones/providers/Microsoft.Communication/"
			"communicationServices/acs-donaciones\",\"subject\":\"advancedMessage/sender/%s/recipient/"
			"2f61ca04-0698-4593-be4f-58dfe3d8e392\",\"data\":{\"channelType\":\"whatsapp\",\"from\":\"%s\","
			"\"to\":\"2f61ca04-0698-4593-be4f-58dfe3d8e392\",\"receivedTimestamp\":"
			"\"2026-11-20T14:03:11+00:00\",\"messageId\":\"4a3769ff-6d2c-4a8e-9c1e-%012llx\","
			"\"messageType\":\"text\",\"content\":\"%s\"},\"eventType\":"
			"\"Microsoft.Communication.AdvancedMessageReceived\",\"dataVersion\":\"1.0\","
			"\"metadataVersion\":\"1\",\"eventTime\":\"2026-11-20T14:03:12.4817733Z\"}]",
			(unsigned long long)seq, phone_digits, phone_digits, (unsigned long long)seq, text);
}

bool payload_reply_has_step(const char *value, size_t len, const char *step)
{
	static const char key[] = "\"conversation_step\":\"";
	size_t sl = strlen(step);
	/* the envelope names the step near its start */
	const char *at = memmem(value, len < 400 ? len : 400, key, sizeof(key) - 1);

	if (!at)
		return false;
	at += sizeof(key) - 1;
	return (size_t)(value + len - at) > sl && memcmp(at, step, sl) == 0 && at[sl] == '"';
}
