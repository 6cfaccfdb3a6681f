#include "mc146818.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

#include "i8254.h" /* pit_now_ns: the board's one monotonic clock */
#include "../snapshot/stream.h"

/* Time registers: seconds, minutes, hours, weekday, day, month, year. */
enum { SEC = 0x00, MIN = 0x02, HOUR = 0x04, WDAY = 0x06, MDAY = 0x07, MON = 0x08, YEAR = 0x09 };

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)((v / 10) << 4 | (v % 10));
}

static unsigned from_bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xF);
}

/* Calendar arithmetic on the proleptic Gregorian calendar, by hand: glibc's
 * gmtime and timegm read the time-zone files on first use, which the
 * monitor's seccomp filter (rightly) refuses once the guest runs. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static struct tm civil_from_seconds(int64_t t)
{
	struct tm tm;
	int64_t days = (t >= 0 ? t : t - 86399) / 86400, secs = t - days * 86400;
	memset(&tm, 0, sizeof tm);
	tm.tm_hour = (int)(secs / 3600);
	tm.tm_min = (int)(secs / 60 % 60);
	tm.tm_sec = (int)(secs % 60);
	tm.tm_wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	tm.tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm.tm_mon = (int)m - 1;
	tm.tm_year = (int)(yoe + era * 400 + (m <= 2)) - 1900;
	return tm;
}

static int64_t seconds_from_civil(const struct tm *tm)
{
	return days_from_civil(tm->tm_year + 1900, (unsigned)tm->tm_mon + 1, (unsigned)tm->tm_mday) * 86400 +
	       tm->tm_hour * 3600 + tm->tm_min * 60 + tm->tm_sec;
}

static int64_t host_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static struct tm guest_time(const struct mc146818 *r)
{
	return civil_from_seconds(host_seconds() + r->offset_s);
}

static uint8_t encode(const struct mc146818 *r, unsigned v)
{
	return (r->ram[RTC_REG_B] & RTC_B_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned decode(const struct mc146818 *r, uint8_t v)
{
	return (r->ram[RTC_REG_B] & RTC_B_BINARY) ? v : from_bcd(v);
}

static uint8_t read_time(const struct mc146818 *r, unsigned reg)
{
	struct tm tm = guest_time(r);
	switch (reg) {
	case SEC:
		return encode(r, (unsigned)tm.tm_sec);
	case MIN:
		return encode(r, (unsigned)tm.tm_min);
	case HOUR:
		if (r->ram[RTC_REG_B] & RTC_B_24H)
			return encode(r, (unsigned)tm.tm_hour);
		/* 12-hour form: 12, 1 .. 11, with bit 7 for PM */
		return (uint8_t)(encode(r, (unsigned)((tm.tm_hour + 11) % 12 + 1)) | (tm.tm_hour >= 12 ? 0x80 : 0));
	case WDAY:
		return encode(r, (unsigned)tm.tm_wday + 1);
	case MDAY:
		return encode(r, (unsigned)tm.tm_mday);
	case MON:
		return encode(r, (unsigned)tm.tm_mon + 1);
	case YEAR:
		return encode(r, (unsigned)(tm.tm_year + 1900) % 100);
	default:
		return encode(r, (unsigned)(tm.tm_year + 1900) / 100); /* RTC_CENTURY */
	}
}

/* A write to a time register moves the guest's clock: the other fields
 * keep their current values. */
static void write_time(struct mc146818 *r, unsigned reg, uint8_t val)
{
	struct tm tm = guest_time(r);
	unsigned v = decode(r, reg == HOUR ? (uint8_t)(val & 0x7F) : val);
	switch (reg) {
	case SEC:
		tm.tm_sec = (int)v;
		break;
	case MIN:
		tm.tm_min = (int)v;
		break;
	case HOUR:
		if (!(r->ram[RTC_REG_B] & RTC_B_24H))
			v = v % 12 + ((val & 0x80) ? 12 : 0);
		tm.tm_hour = (int)v;
		break;
	case WDAY:
		return; /* derived from the date */
	case MDAY:
		tm.tm_mday = (int)v;
		break;
	case MON:
		tm.tm_mon = (int)v - 1;
		break;
	case YEAR:
		tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + (int)v - 1900;
		break;
	default: /* RTC_CENTURY */
		tm.tm_year = (int)v * 100 + (tm.tm_year + 1900) % 100 - 1900;
		break;
	}
	r->offset_s = seconds_from_civil(&tm) - host_seconds();
}

static bool is_time_register(unsigned reg)
{
	return (reg <= YEAR && reg != 0x01 && reg != 0x03 && reg != 0x05) || reg == RTC_CENTURY;
}

/* Register A's rate select: 0 stops the periodic interrupt; 1 and 2 mean
 * 256 and 128 Hz (as 8 and 9 do); otherwise 32768 >> (rate - 1) Hz.  The
 * divider bits must select the 32.768 kHz time base. */
static uint64_t period_ns(const struct mc146818 *r)
{
	unsigned rate = r->ram[RTC_REG_A] & 0xF;
	if (rate == 0 || (r->ram[RTC_REG_A] & 0x70) != 0x20)
		return 0;
	if (rate < 3)
		rate += 7;
	return (1000000000ull << (rate - 1)) / 32768;
}

static void update_irq(struct mc146818 *r)
{
	bool level = (r->ram[RTC_REG_C] & RTC_C_PF) && (r->ram[RTC_REG_B] & RTC_B_PIE);
	if (level)
		r->ram[RTC_REG_C] |= RTC_C_IRQF;
	if (level != r->irq) {
		r->irq = level;
		r->set_irq(r->opaque, level);
	}
}

static void reprogram(struct mc146818 *r, uint64_t now_ns)
{
	uint64_t p = period_ns(r);
	r->next_periodic = p && (r->ram[RTC_REG_B] & RTC_B_PIE) ? now_ns + p : UINT64_MAX;
}

void rtc_init(struct mc146818 *r, uint64_t ram_bytes, void (*set_irq)(void *, bool), void *opaque)
{
	memset(r, 0, sizeof *r);
	r->set_irq = set_irq;
	r->opaque = opaque;
	r->next_periodic = UINT64_MAX;
	r->ram[RTC_REG_A] = 0x26; /* 32.768 kHz base, 1024 Hz rate: the firmware's setting */
	r->ram[RTC_REG_B] = RTC_B_24H;
	r->ram[RTC_REG_D] = 0x80; /* valid RAM and time */
	/* Memory sizes as QEMU's PC board stores them: base memory in KiB,
	 * memory above 1 MiB in KiB, and memory above 16 MiB in 64 KiB
	 * units, each capped at 65535. */
	uint64_t ext = ram_bytes > (1u << 20) ? (ram_bytes - (1u << 20)) / 1024 : 0;
	if (ext > 0xFFFF)
		ext = 0xFFFF;
	uint64_t high = ram_bytes > (16u << 20) ? (ram_bytes - (16u << 20)) / 65536 : 0;
	if (high > 0xFFFF)
		high = 0xFFFF;
	r->ram[0x15] = 640 & 0xFF;
	r->ram[0x16] = 640 >> 8;
	r->ram[0x17] = r->ram[0x30] = (uint8_t)ext;
	r->ram[0x18] = r->ram[0x31] = (uint8_t)(ext >> 8);
	r->ram[0x34] = (uint8_t)high;
	r->ram[0x35] = (uint8_t)(high >> 8);
}

uint32_t rtc_read(void *dev, uint16_t offset, unsigned size)
{
	struct mc146818 *r = dev;
	(void)size;
	if (offset == 0)
		return 0xFF; /* the index port reads as nothing */
	unsigned reg = r->index;
	if (is_time_register(reg))
		return read_time(r, reg);
	uint8_t val = r->ram[reg];
	if (reg == RTC_REG_C) {
		r->ram[RTC_REG_C] = 0; /* reading C acknowledges every flag */
		update_irq(r);
	}
	return val;
}

void rtc_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct mc146818 *r = dev;
	(void)size;
	if (offset == 0) {
		r->index = (uint8_t)(val & 0x7F); /* bit 7 masks NMI: no NMI source here */
		return;
	}
	unsigned reg = r->index;
	if (is_time_register(reg)) {
		write_time(r, reg, (uint8_t)val);
		return;
	}
	switch (reg) {
	case RTC_REG_A:
		r->ram[reg] = (uint8_t)(val & 0x7F); /* UIP is read-only */
		reprogram(r, pit_now_ns());
		break;
	case RTC_REG_B:
		r->ram[reg] = (uint8_t)val;
		reprogram(r, pit_now_ns());
		update_irq(r);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->ram[reg] = (uint8_t)val;
		break;
	}
}

uint64_t rtc_next_deadline(const struct mc146818 *r)
{
	return r->next_periodic;
}

void rtc_poll(struct mc146818 *r, uint64_t now_ns)
{
	if (now_ns < r->next_periodic)
		return;
	uint64_t p = period_ns(r);
	r->ram[RTC_REG_C] |= RTC_C_PF;
	/* Missed periods collapse into one flag, as on the chip. */
	r->next_periodic = p ? now_ns + p - (now_ns - r->next_periodic) % p : UINT64_MAX;
	update_irq(r);
}

void rtc_save(const struct mc146818 *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct mc146818, set_irq));
}

bool rtc_load(struct mc146818 *d, struct snap *s)
{
	if (!snap_get(s, d, offsetof(struct mc146818, set_irq)))
		return false;
	return d->index < sizeof d->ram ? true : snap_bad(s, "the RTC's register index");
}
