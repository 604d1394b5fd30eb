//! Independent checks of media files with ffprobe (being written).
