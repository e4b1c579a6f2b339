"""Standard-address lookup tolerant of how people write addresses.

People drop the province and city, write 张店 for 张店区, use full-width digits or Chinese numerals, add
"附近/门口/对面", or name a place (八大局便民市场) instead of a house number. Matching goes from exact
(normalised standard text) to road + nearest house number to named place to community.
"""
from __future__ import annotations

import bisect
import re
from collections import defaultdict

from cityops.registry.model import StandardAddress

_FULLWIDTH = str.maketrans("０１２３４５６７８９－（）", "0123456789-()")
_NOISE = re.compile(r"[\s,，。.、;；:：()（）\"'“”‘’\-]")
_TAIL = re.compile(r"(附近|门口|对面|旁边|周边|一带|东侧|西侧|南侧|北侧|东边|西边|南边|北边|路口|处|这里|那里)+$")
_NUMBER = re.compile(r"(\d+)号")
_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = re.compile(r"([零〇一二两三四五六七八九十百]+)号")


def _cn_to_int(s: str) -> int:
    """一百二十八 → 128, 十五 → 15, 一二八 → 128."""
    if "百" not in s and "十" not in s:
        return int("".join(str(_CN_DIGIT[ch]) for ch in s))
    total, current = 0, 0
    for ch in s:
        if ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = _CN_DIGIT[ch]
    return total + current


def normalise(text: str, prefixes: tuple[str, ...] = ()) -> str:
    t = _NOISE.sub("", text.translate(_FULLWIDTH))
    t = _CN_NUMBER.sub(lambda m: f"{_cn_to_int(m.group(1))}号", t)
    for p in prefixes:
        t = t.removeprefix(p)
    return _TAIL.sub("", t)


class AddressIndex:
    def __init__(self, addresses: list[StandardAddress], district_names: dict[str, str],
                 community_names: dict[str, str], city_prefixes: tuple[str, ...]):
        self.prefixes = city_prefixes
        # Short district names as people say them: 张店区 → 张店, 桓台县 → 桓台.
        self.districts = {**{n: c for c, n in district_names.items()},
                          **{n[:-1]: c for c, n in district_names.items() if len(n) > 2}}
        self.exact: dict[str, StandardAddress] = {}
        self.by_road: dict[str, list[tuple[int, StandardAddress]]] = defaultdict(list)
        self.places: dict[str, StandardAddress] = {}
        self.communities: dict[str, StandardAddress] = {}
        for a in addresses:
            key = normalise(a.text, city_prefixes)
            self.exact.setdefault(key, a)
            self.exact.setdefault(self._strip_district(key), a)
            if a.number is not None and a.road:
                self.by_road[a.road].append((a.number, a))
            if a.poi:
                self.places.setdefault(a.poi, a)
            c_name = community_names.get(a.grid_code[:12])
            if c_name:
                self.communities.setdefault(c_name, a)
        for lst in self.by_road.values():
            lst.sort(key=lambda x: (x[0], x[1].address_id))
        # Longest first, so 西五路夜市 wins over 西五路 and 人民西路 over 人民路.
        self.road_names = sorted(self.by_road, key=len, reverse=True)
        self.place_names = sorted(self.places, key=len, reverse=True)
        self.community_names = sorted(self.communities, key=len, reverse=True)

    def _strip_district(self, key: str) -> str:
        for name in sorted(self.districts, key=len, reverse=True):
            if key.startswith(name):
                return key[len(name):]
        return key

    def lookup(self, text: str) -> StandardAddress | None:
        if not text or not text.strip():
            return None
        key = normalise(text, self.prefixes)
        hit = self.exact.get(key) or self.exact.get(self._strip_district(key))
        if hit:
            return hit
        district = next((c for n, c in sorted(self.districts.items(), key=lambda x: -len(x[0])) if n in key), None)
        for place in self.place_names:
            if place in key:
                a = self.places[place]
                if district is None or a.district_code == district:
                    return a
        number = _NUMBER.search(key)
        for road in self.road_names:
            if road in key:
                cands = [x for x in self.by_road[road] if district is None or x[1].district_code == district]
                if not cands:
                    continue
                if number is None:
                    return cands[len(cands) // 2][1]
                return _nearest(cands, int(number.group(1)))
        for name in self.community_names:
            if name in key:
                a = self.communities[name]
                if district is None or a.district_code == district:
                    return a
        return None


def _nearest(cands: list[tuple[int, StandardAddress]], n: int) -> StandardAddress:
    numbers = [x[0] for x in cands]
    i = bisect.bisect_left(numbers, n)
    best = [cands[j] for j in (i - 1, i) if 0 <= j < len(cands)]
    # Prefer the same side of the road (odd/even), then the closest number.
    return min(best + [c for c in cands[max(0, i - 3):i + 3] if c[0] % 2 == n % 2],
               key=lambda x: (x[0] % 2 != n % 2, abs(x[0] - n)))[1]
