/* api_date.c - the HTTP date reader behind ngx.parse_http_time: it accepts and refuses what
 * nginx does, leniency included (week day and zone unread, a month told by its fewest telling
 * letters, day 0 as the eve of the 1st), so a plugin gets the number nginx would compute.
 */
#include "api_date.h"

/* A read position in the input; every byte read goes through at(), which gives -1 past the
 * end, so a short or hostile string can only be refused. */
typedef struct cursor {
    const unsigned char *s;
    size_t len, i;
} cursor;

static int at(const cursor *c, size_t k)
{
    return c->i + k < c->len ? c->s[c->i + k] : -1;
}

static size_t left(const cursor *c)
{
    return c->i < c->len ? c->len - c->i : 0;
}

/* n decimal digits at the cursor into *v; -1 (cursor unmoved) when one is not a digit. */
static int digits(cursor *c, int n, int *v)
{
    int x = 0;
    for (int k = 0; k < n; k++) {
        int d = at(c, (size_t)k);
        if (d < '0' || d > '9')
            return -1;
        x = x * 10 + (d - '0');
    }
    c->i += (size_t)n;
    *v = x;
    return 0;
}

/* The month (0 = January) from the letters at the cursor: nginx looks at the first letter, and
 * at the second or third only where the first is shared (J, M, A). -1 for another letter. */
static int month_of(const cursor *c)
{
    switch (at(c, 0)) {
    case 'J':
        return at(c, 1) == 'a' ? 0 : at(c, 2) == 'n' ? 5 : 6;
    case 'F':
        return 1;
    case 'M':
        return at(c, 2) == 'r' ? 2 : 4;
    case 'A':
        return at(c, 1) == 'p' ? 3 : 7;
    case 'S':
        return 8;
    case 'O':
        return 9;
    case 'N':
        return 10;
    case 'D':
        return 11;
    default:
        return -1;
    }
}

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian calendar (month 1..12);
 * linear in day, so day 0 is the day before the first. */
static int64_t days_since_epoch(int64_t year, int month, int day)
{
    int64_t y = year - (month <= 2);            /* years start in March: leap days come last */
    int64_t era = (y >= 0 ? y : y - 399) / 400; /* 400-year cycles of 146097 days */
    int64_t yoe = y - era * 400;
    int64_t mar = (month + 9) % 12;              /* 0 = March */
    int64_t doy = (153 * mar + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

enum { FMT_1123, FMT_850, FMT_ASCTIME };

int dc_http_date_parse(const char *s, size_t len, int64_t *t)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    cursor c = {(const unsigned char *)s, len, 0};
    int fmt = FMT_1123, day = 0, year = 0, hour, min, sec;

    /* the week day runs to the first comma (RFC 1123 and 850) or space (asctime) */
    while (c.i < len && s[c.i] != ',' && s[c.i] != ' ')
        c.i++;
    if (c.i == len)
        return -1;
    if (s[c.i] == ' ')
        fmt = FMT_ASCTIME;
    c.i++;
    while (c.i < len && s[c.i] == ' ')
        c.i++;
    /* nginx wants as many bytes as the shortest complete date still needs from here */
    if (left(&c) < 18)
        return -1;

    if (fmt != FMT_ASCTIME) {
        if (digits(&c, 2, &day) != 0)
            return -1;
        if (at(&c, 0) == ' ') {
            if (left(&c) < 18)
                return -1;
        } else if (at(&c, 0) == '-') {
            fmt = FMT_850;
        } else {
            return -1;
        }
        c.i++;
    }

    int month = month_of(&c);
    if (month < 0)
        return -1;
    c.i += 3;
    /* asctime's separator after the month is not looked at */
    if ((fmt == FMT_1123 && at(&c, 0) != ' ') || (fmt == FMT_850 && at(&c, 0) != '-'))
        return -1;
    c.i++;

    if (fmt == FMT_1123) {
        if (digits(&c, 4, &year) != 0)
            return -1;
    } else if (fmt == FMT_850) {
        if (digits(&c, 2, &year) != 0)
            return -1;
        year += year < 70 ? 2000 : 1900;
    } else {
        if (at(&c, 0) == ' ')
            c.i++; /* a day of one digit may be padded with a space */
        if (digits(&c, 1, &day) != 0)
            return -1;
        if (at(&c, 0) != ' ') {
            int d2;
            if (digits(&c, 1, &d2) != 0)
                return -1;
            day = day * 10 + d2;
        }
        if (left(&c) < 14)
            return -1;
    }

    if (at(&c, 0) != ' ')
        return -1;
    c.i++;
    if (digits(&c, 2, &hour) != 0 || at(&c, 0) != ':')
        return -1;
    c.i++;
    if (digits(&c, 2, &min) != 0 || at(&c, 0) != ':')
        return -1;
    c.i++;
    if (digits(&c, 2, &sec) != 0)
        return -1;
    if (fmt == FMT_ASCTIME) {
        if (at(&c, 0) != ' ')
            return -1;
        c.i++;
        if (digits(&c, 4, &year) != 0)
            return -1;
    }
    /* what follows (the zone, anything) is not read */

    if (hour > 23 || min > 59 || sec > 59)
        return -1;
    if (day == 29 && month == 1) {
        if (year % 4 != 0 || (year % 100 == 0 && year % 400 != 0))
            return -1;
    } else if (day > mdays[month]) {
        return -1;
    }
    *t = days_since_epoch(year, month + 1, day) * 86400 + hour * 3600 + min * 60 + sec;
    return 0;
}
