"""Vectorised ray casting of a :class:`~trainer.data.scene.Scene` with numpy.

One ray per pixel centre, every primitive intersected with all rays at once; the nearest
hit wins. Shading: Lambertian sun plus ambient light on a textured albedo (3-D checker
faded out where a pixel covers more than a checker cell, plus sinusoidal noise), then
exponential fog that darkens with distance. Rays are scaled so that the camera-frame z of
the direction is 1, hence the ray parameter ``t`` of a hit *is* its z-depth (what KITTI
and NYU store), not the distance along the ray.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from trainer.data.scene import Box, Camera, Material, Plane, Scene, Sphere

__all__ = ["camera_rays", "render"]

F32 = npt.NDArray[np.float32]
_EPS = 1e-4


def camera_rays(camera: Camera) -> F32:
    """Ray directions through the pixel centres in the world frame -> ``[3, H*W]``.

    Each direction has camera-frame z = 1, pixels in row-major order (row ``v``, column
    ``u`` at index ``v*W + u``); the pitch rotates them about the x axis (positive looks
    down, i.e. towards +y).
    """
    u = (np.arange(camera.width, dtype=np.float32) + 0.5 - camera.width / 2.0) / camera.focal
    v = (np.arange(camera.height, dtype=np.float32) + 0.5 - camera.height / 2.0) / camera.focal
    x = np.broadcast_to(u[None, :], (camera.height, camera.width)).reshape(-1)
    y = np.broadcast_to(v[:, None], (camera.height, camera.width)).reshape(-1)
    c, s = math.cos(camera.pitch), math.sin(camera.pitch)
    # R_x(pitch): camera forward (0, 0, 1) -> (0, sin, cos) in the world.
    return np.stack([x, c * y + s, -s * y + c]).astype(np.float32)


Window = tuple[slice, slice]
_FULL: Window = (slice(None), slice(None))


class _Hits:
    """Nearest hit per pixel: depth ``t [H,W]``, object id ``obj [H,W]``, normal ``[3,H,W]``."""

    def __init__(self, height: int, width: int) -> None:
        self.t = np.full((height, width), np.inf, dtype=np.float32)
        self.obj = np.full((height, width), -1, dtype=np.int64)
        self.normal = np.zeros((3, height, width), dtype=np.float32)

    def update(
        self, window: Window, t: F32, hit: npt.NDArray[np.bool_], normal: F32, obj: int
    ) -> None:
        """Keep the hits ``t [p]`` (``p`` = pixels of ``window``, row-major) that are nearer."""
        rows, cols = window
        best = self.t[rows, cols]
        shape = best.shape
        closer = (hit & (t < best.reshape(-1))).reshape(shape)
        best[closer] = t.reshape(shape)[closer]
        self.obj[rows, cols][closer] = obj
        normals = self.normal[:, rows, cols]
        normals[:, closer] = normal.reshape(3, *shape)[:, closer]


def _window(camera: Camera, centre: tuple[float, float, float], radius: float) -> Window:
    """Pixels that a ball (world ``centre``, ``radius`` m) can cover, conservatively.

    Intersecting a small far object with only these rays instead of all of them is what
    keeps rendering fast; a ball reaching behind the camera gets the whole image.
    """
    x, wy, wz = centre
    c, s = math.cos(camera.pitch), math.sin(camera.pitch)
    y, z = c * wy - s * wz, s * wy + c * wz  # world -> camera frame (inverse pitch)
    if z - radius < 0.05:
        return _FULL

    def span(a: float, centre_px: float, size: int) -> slice:
        lo = min((a - radius) / (z - radius), (a - radius) / (z + radius))
        hi = max((a + radius) / (z - radius), (a + radius) / (z + radius))
        first = max(0, math.floor(camera.focal * lo + centre_px - 1.0))
        last = min(size, math.ceil(camera.focal * hi + centre_px + 1.0))
        return slice(first, max(first, last))

    return span(y, camera.height / 2.0, camera.height), span(x, camera.width / 2.0, camera.width)


def _plane(rays: F32, plane: Plane, cam_height: float) -> tuple[F32, npt.NDArray[np.bool_], F32]:
    n = np.asarray(plane.normal, dtype=np.float32)
    denom = n @ rays
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.float32(plane.offset) / denom).astype(np.float32)
    hit = np.isfinite(t) & (t > _EPS)
    if plane.top is not None:
        hit &= t * rays[1] >= cam_height - plane.top
    # Face the camera whichever side it looks at.
    normal = -np.sign(denom)[None, :] * n[:, None]
    return t, hit, normal.astype(np.float32)


def _box(rays: F32, box: Box, cam_height: float) -> tuple[F32, npt.NDArray[np.bool_], F32]:
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=np.float32)  # local->world
    centre = np.array([box.x, cam_height - box.size[1] / 2.0, box.z], dtype=np.float32)
    half = np.asarray(box.size, dtype=np.float32)[:, None] / 2.0
    origin = -(rot.T @ centre)[:, None]  # camera centre in box coordinates
    d = rot.T @ rays
    d = np.where(np.abs(d) < 1e-9, np.float32(1e-9), d)  # slabs parallel to a ray
    t1 = (-half - origin) / d
    t2 = (half - origin) / d
    t_near, t_far = np.minimum(t1, t2), np.maximum(t1, t2)
    axis = np.argmax(t_near, axis=0)
    cols = np.arange(rays.shape[1])
    t_in = t_near[axis, cols]
    hit = (t_far.min(axis=0) >= t_in) & (t_in > _EPS)
    local = np.zeros_like(rays)
    local[axis, cols] = -np.sign(d[axis, cols])
    return t_in.astype(np.float32), hit, (rot @ local).astype(np.float32)


def _sphere(rays: F32, sphere: Sphere) -> tuple[F32, npt.NDArray[np.bool_], F32]:
    centre = np.asarray(sphere.centre, dtype=np.float32)
    a = np.einsum("ip,ip->p", rays, rays)
    b = centre @ rays
    disc = b * b - a * (centre @ centre - sphere.radius**2)
    hit = disc >= 0.0
    t = ((b - np.sqrt(np.where(hit, disc, 0.0))) / a).astype(np.float32)
    hit &= t > _EPS
    normal = (t[None, :] * rays - centre[:, None]) / np.float32(sphere.radius)
    return t, hit, normal.astype(np.float32)


def _texture(materials: list[Material], obj: npt.NDArray[np.int64], p: F32, footprint: F32) -> F32:
    """Albedo ``[3,P]`` of the surfaces at world points ``p [3,P]``.

    ``footprint [P]``: metres a pixel covers there; texture detail finer than it fades
    out instead of aliasing into noise.
    """

    def table(values: list[object]) -> F32:
        """Per-material values ``[M,...]`` -> per-pixel ``[...,P]`` (last axis = pixels)."""
        stacked = np.asarray(values, dtype=np.float32)
        return np.moveaxis(stacked, 0, -1)[..., obj]

    size = table([m.checker_size for m in materials])
    cells = np.floor((p + table([m.checker_offset for m in materials])) / size)
    parity = (cells[0] + cells[1] + cells[2]).astype(np.int64) & 1
    checker = parity.astype(np.float32) - 0.5
    fade = np.clip((1.0 - footprint / size) / 0.75, 0.0, 1.0)
    contrast = table([m.checker_contrast for m in materials])
    albedo = table([m.colour for m in materials]) * (1.0 + contrast * fade * checker)

    k = table([m.noise_k for m in materials])  # [3 waves, 3 axes, P]
    # Explicit sums over the 3 axes: numpy's reduce over a short leading axis is slow.
    angle = k[:, 0] * p[0] + k[:, 1] * p[1] + k[:, 2] * p[2]
    angle += table([m.noise_phase for m in materials])
    k_norm = np.sqrt(k[:, 0] ** 2 + k[:, 1] ** 2 + k[:, 2] ** 2)
    wavelength = 2.0 * np.pi / np.maximum(k_norm, 1e-6)  # [3,P]
    wave_fade = np.clip((1.0 - 2.0 * footprint / wavelength) / 0.75, 0.0, 1.0)
    waves = wave_fade * np.sin(angle)
    noise = (waves[0] + waves[1] + waves[2]) / 3.0
    amp = table([m.noise_amp for m in materials])
    return (albedo * (1.0 + amp * noise)).astype(np.float32)


def render(scene: Scene) -> tuple[F32, F32]:
    """Ray-cast ``scene`` -> ``(rgb [H,W,3] float32 in [0,1], depth [H,W] float32)``.

    ``depth`` is the camera-frame z of the nearest surface in metres, ``inf`` where a ray
    hits nothing (sky); range limits are applied by the caller.
    """
    cam = scene.camera
    grid = camera_rays(cam).reshape(3, cam.height, cam.width)
    hits = _Hits(cam.height, cam.width)
    materials: list[Material] = []

    def window_rays(window: Window) -> F32:
        return np.ascontiguousarray(grid[:, window[0], window[1]]).reshape(3, -1)

    all_rays = grid.reshape(3, -1)
    for plane in scene.planes:
        hits.update(_FULL, *_plane(all_rays, plane, cam.cam_height), len(materials))
        materials.append(plane.material)
    for box in scene.boxes:
        centre = (box.x, cam.cam_height - box.size[1] / 2.0, box.z)
        window = _window(cam, centre, 0.5 * math.hypot(*box.size))
        hits.update(window, *_box(window_rays(window), box, cam.cam_height), len(materials))
        materials.append(box.material)
    for sphere in scene.spheres:
        window = _window(cam, sphere.centre, sphere.radius)
        hits.update(window, *_sphere(window_rays(window), sphere), len(materials))
        materials.append(sphere.material)

    rays = all_rays
    fog = np.asarray(scene.fog_colour, dtype=np.float32)[:, None]
    ray_len = np.sqrt(rays[0] ** 2 + rays[1] ** 2 + rays[2] ** 2)
    unit = rays / ray_len
    # Sky: the fog colour, a little brighter towards the zenith.
    rgb = fog * (1.0 + 0.4 * np.clip(-unit[1], 0.0, 1.0))[None, :]
    surface = hits.obj.reshape(-1) >= 0
    if surface.any() and materials:
        obj = hits.obj.reshape(-1)[surface]
        t = hits.t.reshape(-1)[surface]
        normal = hits.normal.reshape(3, -1)[:, surface]
        view = unit[:, surface]
        cos_view = np.abs(normal[0] * view[0] + normal[1] * view[1] + normal[2] * view[2])
        # A pixel covers t/f metres across the ray and t/(f cos) along a slanted surface;
        # the geometric mean fades detail on grazing surfaces without blurring it away.
        footprint = t / np.float32(cam.focal) / np.sqrt(np.maximum(cos_view, 0.05))
        albedo = _texture(materials, obj, t[None, :] * rays[:, surface], footprint)
        light = np.asarray(scene.light, dtype=np.float32)
        light = light / np.linalg.norm(light)
        lambert = np.maximum(light @ normal, 0.0)
        shade = scene.ambient + (1.0 - scene.ambient) * lambert
        attenuation = np.exp(-t * ray_len[surface] / np.float32(scene.fog_distance))
        rgb[:, surface] = albedo * (shade * attenuation)[None, :] + fog * (1.0 - attenuation)
    image = np.clip(rgb, 0.0, 1.0).T.reshape(cam.height, cam.width, 3)
    depth = hits.t.reshape(cam.height, cam.width)
    return image.astype(np.float32), depth.astype(np.float32)
