"""Procedural scene descriptions for the synthetic data set, and their random sampling.

Coordinates are metres in the camera's world frame: origin at the camera centre, x right,
y down, z forward (before pitch). The ground is the plane ``y = camera.cam_height``.
A scene is plain data; :mod:`trainer.data.render` turns it into an image and a depth map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "Box",
    "Camera",
    "Material",
    "Plane",
    "Scene",
    "Sphere",
    "default_focal",
    "sample_scene",
]

FloatArray = npt.NDArray[np.float64]


def default_focal(width: int) -> float:
    """Focal length in pixels: KITTI's horizontal field of view (about 81 degrees)."""
    return 0.58 * width


@dataclass(frozen=True)
class Camera:
    """Pinhole camera ``height x width`` px, principal point at the image centre.

    ``cam_height``: metres above the ground; ``pitch``: radians, positive looks down.
    """

    height: int
    width: int
    focal: float
    cam_height: float = 1.65
    pitch: float = 0.0


@dataclass(frozen=True, eq=False)
class Material:
    """Surface appearance: albedo modulated by a 3-D checker and sinusoidal noise.

    Both are solid textures in world metres, so their apparent size in pixels shrinks
    with distance (a depth cue). ``noise_k [3,3]``: one wave vector (rad/m) per row.
    """

    colour: tuple[float, float, float]
    checker_size: float = 1.0
    checker_contrast: float = 0.5
    checker_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    noise_amp: float = 0.0
    noise_k: FloatArray = field(default_factory=lambda: np.zeros((3, 3)))
    noise_phase: FloatArray = field(default_factory=lambda: np.zeros(3))


@dataclass(frozen=True)
class Plane:
    """Points ``p`` with ``normal . p = offset``; ``top`` (m above ground) limits walls."""

    normal: tuple[float, float, float]
    offset: float
    material: Material
    top: float | None = None


@dataclass(frozen=True)
class Box:
    """A box standing on the ground: footprint centre ``(x, z)``, yaw about the y axis.

    ``size``: full extent (x, y, z) in metres before yaw; the bottom face lies on the ground.
    """

    x: float
    z: float
    size: tuple[float, float, float]
    yaw: float
    material: Material


@dataclass(frozen=True)
class Sphere:
    """A sphere of ``radius`` metres centred at ``centre`` (x, y, z)."""

    centre: tuple[float, float, float]
    radius: float
    material: Material


@dataclass(frozen=True)
class Scene:
    """Everything the renderer needs: camera, geometry, light and fog.

    ``light``: unit vector towards the sun; ``fog_distance``: metres over which light
    from a surface drops by a factor e, blending into the dark ``fog_colour``.
    """

    camera: Camera
    planes: tuple[Plane, ...] = ()
    boxes: tuple[Box, ...] = ()
    spheres: tuple[Sphere, ...] = ()
    light: tuple[float, float, float] = (0.3, -0.8, -0.5)
    ambient: float = 0.3
    fog_distance: float = math.inf
    fog_colour: tuple[float, float, float] = (0.15, 0.17, 0.2)


def _material(rng: np.random.Generator, *, min_size: float, max_size: float) -> Material:
    hue = rng.uniform(0.25, 0.95, size=3)
    # Random directions and wavelengths (0.3-4 m) for three sinusoids.
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(0.3, 4.0, size=3)
    return Material(
        colour=(float(hue[0]), float(hue[1]), float(hue[2])),
        checker_size=float(math.exp(rng.uniform(math.log(min_size), math.log(max_size)))),
        checker_contrast=float(rng.uniform(0.3, 0.9)),
        checker_offset=(float(rng.uniform(0, 10)), float(rng.uniform(0, 10)), 0.0),
        noise_amp=float(rng.uniform(0.05, 0.3)),
        noise_k=directions * (2.0 * math.pi / wavelengths)[:, None],
        noise_phase=rng.uniform(0.0, 2.0 * math.pi, size=3),
    )


def _lateral(rng: np.random.Generator, z: float, camera: Camera) -> float:
    """An x inside the horizontal field of view at depth ``z`` (a little beyond it)."""
    half = z * (camera.width / 2.0) / camera.focal
    return float(rng.uniform(-1.1, 1.1) * half)


def sample_scene(
    rng: np.random.Generator,
    *,
    height: int,
    width: int,
    min_depth: float,
    max_depth: float,
) -> Scene:
    """Draw a street-like scene: ground, side walls, maybe a far wall, boxes and spheres.

    Distances scale with ``max_depth`` so that a scene fills the evaluated depth range;
    no object comes closer than about ``min_depth`` to the camera.
    """
    camera = Camera(
        height=height,
        width=width,
        focal=default_focal(width),
        cam_height=float(rng.uniform(1.4, 1.9)),
        pitch=float(rng.uniform(-0.03, 0.05)),
    )
    h = camera.cam_height
    planes = [Plane((0.0, -1.0, 0.0), -h, _material(rng, min_size=0.4, max_size=3.0))]
    far = max(min_depth + 1.0, 0.7 * max_depth)
    near = max(2.0, min_depth + 0.5)
    for side in (-1.0, 1.0):
        if rng.random() < 0.75:
            yaw = rng.uniform(-0.25, 0.25)
            # Wall at lateral distance d: normal points away from the camera.
            d = rng.uniform(3.0, 10.0)
            normal = (side * math.cos(yaw), 0.0, math.sin(yaw))
            planes.append(
                Plane(normal, d, _material(rng, min_size=0.3, max_size=2.5), rng.uniform(2.5, 15))
            )
    if rng.random() < 0.35:
        d = rng.uniform(0.4, 1.0) * max_depth
        yaw = rng.uniform(-0.3, 0.3)
        normal = (math.sin(yaw), 0.0, math.cos(yaw))
        planes.append(
            Plane(normal, d, _material(rng, min_size=0.5, max_size=3.0), rng.uniform(3.0, 20.0))
        )

    boxes = []
    for _ in range(int(rng.integers(2, 9))):
        size = (rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0))
        reach = 0.5 * math.hypot(size[0], size[2])
        z = rng.uniform(near + reach, max(near + reach + 1.0, far))
        boxes.append(
            Box(
                x=_lateral(rng, z, camera),
                z=float(z),
                size=(float(size[0]), float(size[1]), float(size[2])),
                yaw=float(rng.uniform(-math.pi, math.pi)),
                material=_material(rng, min_size=0.1, max_size=1.0),
            )
        )
    spheres = []
    for _ in range(int(rng.integers(1, 5))):
        radius = float(rng.uniform(0.3, 1.8))
        z = rng.uniform(near + radius, max(near + radius + 1.0, far))
        lift = rng.uniform(0.0, 2.5) if rng.random() < 0.3 else 0.0
        centre = (_lateral(rng, z, camera), h - radius - lift, float(z))
        spheres.append(Sphere(centre, radius, _material(rng, min_size=0.1, max_size=0.8)))

    azimuth = rng.uniform(-math.pi, math.pi)
    elevation = rng.uniform(0.4, 1.3)
    light = (
        math.cos(elevation) * math.sin(azimuth),
        -math.sin(elevation),
        math.cos(elevation) * math.cos(azimuth),
    )
    grey = rng.uniform(0.05, 0.25)
    fog = np.clip(grey + rng.uniform(-0.03, 0.03, size=3), 0.0, 1.0)
    return Scene(
        camera=camera,
        planes=tuple(planes),
        boxes=tuple(boxes),
        spheres=tuple(spheres),
        light=light,
        ambient=float(rng.uniform(0.2, 0.4)),
        fog_distance=float(rng.uniform(0.3, 0.7) * max_depth),
        fog_colour=(float(fog[0]), float(fog[1]), float(fog[2])),
    )
